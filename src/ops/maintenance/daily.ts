// The runbook's daily-maintenance.sh, cron-safe: under the maintenance lock, certificate days left
// (renewed with --renew when under --warn-days), log sizes, rotation of ifmesh's own logs through
// logrotate, witness cleanup, the periodic key rotation's health, and the daily health report. Every
// step runs even when an earlier one needs a human; `ok` is false if any did, and then the team is
// told (Slack and/or e-mail, notify.ts): a cron job's exit code and log file are read by nobody.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest } from '../../clients/http.js';
import { logrotateConfig, runLogrotate } from '../../exec/logrotate.js';
import { scanProcesses } from '../../state/processes.js';
import { formatDuration } from '../../ui/units.js';
import type { CertRotationReport } from '../certs/rotate.js';
import { Supervisor } from '../fleet/supervisor.js';
import { WATCHDOG_NAME } from '../fleet/watchdog-process.js';
import { type RotationSchedule, rotationSchedule } from '../keys/schedule.js';
import { collectMesh, type MeshSample } from '../monitoring/collect.js';
import { type ProcedureJournal, withProcedure } from '../procedure.js';
import type { OpContext } from '../shared.js';
import { connectedPairs } from '../verify/deployment.js';
import { certificateStep } from './certificate.js';
import {
  countWitnessEvents,
  errorText,
  type MaintenanceTargets,
  utcDay,
  withMaintenanceLock,
  writeJsonWhole,
} from './common.js';
import { type NoticeIo, type NoticeOutcome, tellSomeone } from './notify.js';

export interface DailyOptions extends MaintenanceTargets {
  cert?: string | undefined;
  key?: string | undefined;
  warnDays: number;
  retainDays: number;
  /** Renew the certificate (certbot) when fewer than warnDays are left; never forced. */
  renew?: boolean;
  /** PRODUCTION_MODE: a missing certificate is a finding, not a skipped step. */
  production?: boolean;
  certbotConfigDir?: string | undefined;
  /** ENABLE_SRTP_KEY_ROTATION and its interval: an overdue or failed periodic rotation is a finding. */
  keyRotation?: { enabled: boolean; intervalMs: number };
  /** Who is told when something needs a person; absent: nobody (the report still says so). */
  notice?: NoticeIo;
  /** Change nothing: logrotate -d on a temporary copy of the configuration, no cleanup, no report file. */
  dryRun?: boolean;
}

/** The runbook's reports/daily-health-YYYYMMDD.json fields, plus the maintenance id. */
export interface DailyHealth {
  maintenance_id: string;
  timestamp: string;
  certificate_days_left: number | null;
  total_agents: number | null;
  /** The runbook's field: connected reports, one from each end of a pair. */
  active_connections: number | null;
  /** Distinct connected pairs of registered agents (an extension): what a person means by connections. */
  connected_pairs: number | null;
  error_count_24h: number | null;
}

export interface DailyReport {
  maintenance_id: string;
  dry_run: boolean;
  ok: boolean;
  /** Each thing a person must look at; empty when all is well. */
  needs_human: string[];
  certificate: { cert: string; days_left: number; status: string; problems: string[] } | null;
  /** What --renew did (or would do, on a dry run); null when not asked or not due. */
  renewal: CertRotationReport | null;
  key_rotation: RotationSchedule | null;
  logs: { file: string; bytes: number }[];
  logs_total_bytes: number;
  /** `written`: false on a dry run, whose logrotate -d read a scratch copy (`config` is not touched). */
  logrotate: { ok: boolean; config: string; output: string; written: boolean };
  cleanup: { retain_days: number; ok: boolean; answer?: unknown; error?: string };
  health: DailyHealth;
  /** The signaling instances looked at (instances of one cluster share their agents: counted once). */
  signaling: MeshSample['instances'];
  report_file: string;
  /** Whether the team was told about `needs_human`. */
  notice: NoticeOutcome;
}

function logSizes(dir: string): { file: string; bytes: number }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((f) => ({ file: f, bytes: statSync(`${dir}/${f}`).size }));
}

export async function runDaily(
  o: DailyOptions,
  ctx: Pick<OpContext, 'clock' | 'exec' | 'dispatcher' | 'signal'> & Partial<Pick<OpContext, 'env'>>,
): Promise<DailyReport> {
  return withMaintenanceLock(o.state, 'maintenance daily', ctx.clock, () =>
    // A dry run changes nothing: it leaves the last real run's journal as it is.
    o.dryRun
      ? daily(o, undefined, ctx)
      : withProcedure(
          o.state,
          'maintenance-daily',
          {
            summary: `daily maintenance MAINT-${utcDay(ctx.clock.now())}`,
            rerun: 'ifmesh maintenance daily',
          },
          ctx,
          (journal) => daily(o, journal, ctx),
        ),
  );
}

async function daily(
  o: DailyOptions,
  journal: ProcedureJournal<'maintenance-daily'> | undefined,
  ctx: Pick<OpContext, 'clock' | 'exec' | 'dispatcher' | 'signal'>,
): Promise<DailyReport> {
  journal?.step('locked');
  const now = ctx.clock.now();
  const id = `MAINT-${utcDay(now)}`;
  const needs: string[] = [];
  // Findings that cannot wait for the next working day raise the notice from P4 to P3.
  let urgent = false;

  const cert = await certificateStep(
    {
      state: o.state,
      witness: o.witness,
      cert: o.cert,
      key: o.key,
      warnDays: o.warnDays,
      renew: Boolean(o.renew),
      production: Boolean(o.production),
      certbotConfigDir: o.certbotConfigDir,
      dryRun: Boolean(o.dryRun),
    },
    ctx,
  );
  const certificate = cert.certificate;
  journal?.step('certificate');
  for (const n of cert.needs) {
    needs.push(n.text);
    urgent ||= n.urgent;
  }

  const keyRotation = o.keyRotation ? rotationSchedule(o.state, o.keyRotation, now) : null;
  if (keyRotation?.enabled) {
    const last = keyRotation.last;
    if (last && !last.ok)
      needs.push(
        `the last key rotation (${last.at}, ${last.reason}) did not complete: ${last.completed}/${last.total + (last.not_registered?.length ?? 0)} agents${last.pending.length ? `, no answer from ${last.pending.join(', ')}` : ''}${last.not_registered?.length ? `, not registered (old keys kept): ${last.not_registered.join(', ')}` : ''}${last.failed_connections ? `, ${last.failed_connections} connections failed after it` : ''}; rotate again once they are back: ifmesh rotate-keys --state-dir ${o.state.root}`,
      );
    if (keyRotation.overdue)
      needs.push(
        `periodic key rotation is overdue: the last was ${last?.at}, due every ${formatDuration(keyRotation.interval_ms)}; is the rotate-keys --if-due cron line installed (ifmesh maintenance install-cron)? see ifmesh logs key-rotation`,
      );
    else if (!last && o.production)
      needs.push(
        'periodic key rotation (ENABLE_SRTP_KEY_ROTATION=true) has never run: install its cron line with ifmesh maintenance install-cron --write',
      );
  }

  // What runs the fleet: a recorded process that is gone now is one the supervisor did not bring
  // back (dead itself, a crash loop, or none runs): for a person, who was told nothing before.
  const sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'maintenance' });
  const gone = scanProcesses(o.state).records.filter((r) => !r.stopping && sup.running(r.name) === undefined);
  if (gone.length)
    needs.push(
      `not running: ${gone.map((r) => r.name).join(', ')}${gone.some((r) => r.name === WATCHDOG_NAME) ? `; the supervisor is among them, so nothing restarts a dead service: ifmesh supervise --detach --state-dir ${o.state.root}` : ''}; why: ifmesh status --state-dir ${o.state.root}`,
    );

  const before = logSizes(o.state.logs);
  // A dry run hands logrotate -d a scratch copy of the configuration and state: nothing of ours changes.
  const scratch = o.dryRun ? mkdtempSync(path.join(os.tmpdir(), 'ifmesh-logrotate-')) : undefined;
  const conf = scratch ? path.join(scratch, 'logrotate.conf') : o.state.logrotateConf;
  let rotated: { ok: boolean; output: string };
  try {
    mkdirSync(path.dirname(conf), { recursive: true });
    writeFileSync(conf, logrotateConfig(o.state.logs), { mode: 0o644 });
    rotated = await runLogrotate(ctx.exec, {
      conf,
      stateFile: scratch ? path.join(scratch, 'status') : o.state.logrotateState,
      // Forced only on the first run (no state yet: logrotate would only note the logs); after it,
      // logrotate's own schedule (daily) decides, so a run repeated the same day (the maintenance
      // notice says to) rotates nothing again, where -f each time pushed out a day of history.
      force: !existsSync(o.state.logrotateState),
      debug: Boolean(o.dryRun),
    });
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  if (!rotated.ok) needs.push(`logrotate failed: ${rotated.output}`);
  journal?.step('logs_rotated');

  const cleanup: DailyReport['cleanup'] = { retain_days: o.retainDays, ok: false };
  let errors24h: number | null = null;
  if (!o.witness) {
    cleanup.error = 'no witness configured';
  } else {
    if (o.dryRun) {
      cleanup.error = `dry run: would POST ${o.witness.url}/api/admin/cleanup {"retain_days":${o.retainDays}}`;
    } else
      try {
        const a = await httpRequest(`${o.witness.url}/api/admin/cleanup`, {
          method: 'POST',
          body: JSON.stringify({ retain_days: o.retainDays }),
          headers: { authorization: `Bearer ${o.witness.adminKey || o.witness.apiKey}` },
          timeoutMs: 30_000,
          dispatcher: ctx.dispatcher,
        });
        cleanup.ok = a.status === 200;
        cleanup.answer = a.json;
        if (!cleanup.ok) cleanup.error = `HTTP ${a.status}: ${a.text.slice(0, 200)}`;
      } catch (err) {
        cleanup.error = errorText(err);
      }
    if (!cleanup.ok && !o.dryRun) needs.push(`witness cleanup failed: ${cleanup.error}`);
    try {
      errors24h = await countWitnessEvents(o.witness, ctx, 'error|fail', '-24h');
    } catch (err) {
      needs.push(`witness query failed: ${errorText(err)}`);
    }
  }

  journal?.step('witness_cleaned');
  const mesh = await collectMesh({ signaling: o.signaling, now: () => now, dispatcher: ctx.dispatcher });
  const up = mesh.instances.filter((i) => i.up).length;
  if (o.signaling.length && up === 0) {
    needs.push(
      `no signaling instance answers: ${mesh.instances.map((i) => `${i.url} (${i.error})`).join(', ')}`,
    );
    urgent = true;
  }
  const health: DailyHealth = {
    maintenance_id: id,
    timestamp: new Date(now).toISOString(),
    certificate_days_left: certificate?.days_left ?? null,
    total_agents: up ? new Set(mesh.agents.map((a) => a.agent_id)).size : null,
    active_connections: up ? mesh.connections.filter((c) => c.state === 'connected').length : null,
    connected_pairs: up ? connectedPairs(mesh.connections, mesh.agents) : null,
    error_count_24h: errors24h,
  };
  const reportFile = o.state.dailyReport(utcDay(now));
  if (!o.dryRun) writeJsonWhole(reportFile, health);
  journal?.step('report_written');
  const notice = await tellSomeone(
    {
      id,
      kind: 'maintenance-daily',
      title: 'ifmesh daily maintenance needs a person',
      severity: urgent ? 'P3' : 'P4',
      needs,
      started_at: health.timestamp,
      details: { Report: reportFile, 'Run again': `ifmesh maintenance daily --state-dir ${o.state.root}` },
    },
    { notifiers: o.notice?.notifiers ?? {}, notify: o.notice?.notify ?? true, dryRun: o.dryRun },
    ctx,
  );
  return {
    maintenance_id: id,
    dry_run: Boolean(o.dryRun),
    ok: needs.length === 0,
    needs_human: needs,
    certificate,
    renewal: cert.renewal,
    key_rotation: keyRotation,
    logs: before,
    logs_total_bytes: before.reduce((n, l) => n + l.bytes, 0),
    logrotate: { ok: rotated.ok, config: o.state.logrotateConf, output: rotated.output, written: !o.dryRun },
    cleanup,
    health,
    signaling: mesh.instances,
    report_file: reportFile,
    notice,
  };
}
