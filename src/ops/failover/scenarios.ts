// ifmesh failover: the failover guide's scenarios as plan-then-apply procedures. A plan is a pure
// serialisable document (what `--dry-run` prints); applying it takes the deploy lock, logs every step
// to the witness under one failover_id, and changes the stack:
//   A turn      — the replacement tested with a real TURN Allocate (a dead one refused before anything
//                 changes), TURN_SERVERS written to the env file (backup kept), pushed to every
//                 signaling instance (/admin/reload-config), peers on relay reconnected
//                 (/admin/reconnect-turn-peers), until the witness sees them on the replacement.
//   B signaling — the dead instance restarted from its process record (or the nginx backup promoted),
//                 then watched for the stabilisation window on ctx.clock: health and failed
//                 connections; `signaling_server_recovery` logged.
//   D cert      — the certs ops (certificate-rotation-procedure.sh).
//   E keys      — the rotate-keys ops (emergency-srtp-key-rotation.sh).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import { httpRequest, isUnverifiedCertificate } from '../../clients/http.js';
import { CheckFailedError, type IfmeshError, UnauthorizedError, UsageError } from '../../errors.js';
import { applyNginx, type NginxPlan, readNginxPlan } from '../../exec/nginx.js';
import type { WitnessEvent } from '../../protocol/witness.js';
import { acquireLock, type HeldLock } from '../../state/lock.js';
import { scanProcesses } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { formatDuration } from '../../ui/units.js';
import { type Clock, systemClock } from '../../util/clock.js';
import { waitFor } from '../../util/wait.js';
import { applyCertRotation, type CertRotationPlan, type CertRotationReport } from '../certs/rotate.js';
import { currentRelease } from '../deploy/releases.js';
import { logEvents, queryWitness, type WitnessTarget } from '../events.js';
import { answers } from '../fleet/health.js';
import { restartRecorded, withRestartLock } from '../fleet/restart.js';
import { runningPid, Supervisor } from '../fleet/supervisor.js';
import { applyRotation, type RotationPlan, type RotationReport } from '../keys/rotate.js';
import { type KeyRotationStep, ProcedureJournal, type ProcedureName, type StepMarks } from '../procedure.js';
import type { OpContext } from '../shared.js';
import { failedConnectionsStep, recoveryEvent, type StabilisationReport, stabilise } from './stabilise.js';
import {
  persistTurnServers,
  probeReplacement,
  probeTarget,
  rewriteLaunchTurnServers,
  rewriteReleaseTurnServers,
} from './turn.js';
import type { Scenario } from './validate.js';

export interface TurnFailoverPlan {
  failed: string;
  replacement: string;
  /** TURN_SERVERS after the change: the replacement where the failed server was. */
  turn_servers: string[];
  /** The guide's step 1: a real Allocate on the replacement before switching (false: --no-probe). */
  probe: boolean;
  /** The env file TURN_SERVERS is written to (the one the configuration was loaded from), if any. */
  env_file: string | null;
  /** Where TURN_SERVERS comes from now: file, env, flag, default, or the local stack's records. */
  turn_servers_source: string;
  /**
   * Signaling instances whose recorded launch environment sets TURN_SERVERS itself: a restart from
   * their record reads that value, not the file's, so the file alone does not keep the change.
   */
  shadowed_by: { instance: string; turn_servers: string }[];
}

export interface SignalingFailoverPlan {
  failed: string;
  action: 'restart';
  /** The process record of the failed instance. */
  instance: string;
  port: number;
  /** How it is started again: its recorded launch spec. */
  command: string;
  args: string[];
  cwd?: string;
  url: string;
  stabilize_ms: number;
  /** How often the instance's /health is asked during the window. */
  probe_ms: number;
  /** Without --failed: what showed this instance failed ("process gone", /health unanswered). */
  detected?: string;
}

/** Scenario B by promotion: the nginx `backup` instance becomes the active upstream. */
export interface PromoteFailoverPlan {
  failed: string;
  action: 'promote-backup';
  conf: string;
  listen_port: number;
  promoted: number;
  before: { upstreams: number[]; backups: number[] };
  after: { upstreams: number[]; backups: number[] };
  stabilize_ms: number;
  probe_ms: number;
  /**
   * The failed instance is a backup already (a promotion killed after it rewrote nginx, or done by
   * hand): nothing to rewrite; the active instance is watched and the recovery logged.
   */
  already_promoted?: boolean;
  /** The plan nginx was written from (newer stacks): rewritten with `after`, TLS and addresses kept. */
  nginx?: NginxPlan | undefined;
}

export interface PartitionFailoverPlan {
  /** Heal only this agent's links; null: every pair not reported connected. */
  agent: string | null;
  /** Wait between one agent's reconnections and the next one's. */
  stagger_ms: number;
}

export interface FailoverPlan {
  failover_id: string;
  scenario: Scenario;
  signaling: string[];
  steps: string[];
  turn?: TurnFailoverPlan;
  signaling_failover?: SignalingFailoverPlan;
  promote_backup?: PromoteFailoverPlan;
  partition?: PartitionFailoverPlan;
  cert?: CertRotationPlan;
  keys?: RotationPlan;
}

export interface FailoverStep {
  step: string;
  ok: boolean;
  detail: string;
}

/** A step as progress prints it, and as the report's rendering finds it already printed. */
export const stepLine = (s: FailoverStep): string => `${s.ok ? '✓' : '✗'} ${s.step}: ${s.detail}`;

export interface FailoverReport {
  failover_id: string;
  scenario: Scenario;
  ok: boolean;
  steps: FailoverStep[];
  /**
   * From the start of the run (its lock taken) to the step that restored service: peers on the
   * replacement (A), the instance healthy again (B), the pairs connected (C), the certificate or
   * the keys rotated (D, E). null: service was not restored. Measured on ctx.clock.
   */
  recovery: { started_at: string; restored_at: string | null; recovery_ms: number | null };
  /** nothing_to_move: no agent was relayed (so none through the failed server); there was no one to wait for. */
  turn?: {
    probe: { relayed: string | null; rtt_ms: number | null } | null;
    env_file: { file: string | null; backup: string | null; persisted: boolean };
    pushed: number;
    reconnected: string[];
    on_replacement: string[];
    nothing_to_move: boolean;
  };
  promote_backup?: { promoted: number; nginx_pid: number } & Partial<StabilisationReport>;
  signaling_failover?: {
    instance: string;
    old_pid: number | null;
    new_pid: number | null;
  } & Partial<StabilisationReport>;
  partition?: { reconnected: Record<string, string[]>; healed: boolean };
  cert?: CertRotationReport;
  keys?: RotationReport;
}

export function newFailoverId(scenario: Scenario, now: number): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  return `failover-${scenario}-${stamp}-${Math.random().toString(16).slice(2, 8)}`;
}

const httpBase = (u: string) => u.replace(/^ws(s?):\/\//i, 'http$1://').replace(/\/+$/, '');

export function planTurnFailover(o: {
  failoverId: string;
  signaling: string[];
  turnServers: string[];
  failed: string;
  replacement: string;
  /** Test the replacement first (the guide's step 1); false only with --no-probe. */
  probe?: boolean;
  /** Whether TURN credentials are known to probe with (their values never enter the plan). */
  credentials?: boolean;
  envFile?: string | undefined;
  turnServersSource?: string;
  /** Recorded instances that carry TURN_SERVERS in their launch environment. */
  shadowedBy?: { instance: string; turn_servers: string }[];
}): FailoverPlan {
  if (o.failed === o.replacement)
    throw new UsageError('--failed and --replacement are the same server', 'name a different replacement');
  const probe = o.probe ?? true;
  if (probe) {
    probeTarget(o.replacement);
    if (!o.credentials)
      throw new UnauthorizedError(
        `no TURN credentials to test ${o.replacement} with`,
        'set TURN_USERNAME and TURN_PASSWORD (a real Allocate needs them), or pass --no-probe',
      );
  }
  const envFile = o.envFile ?? null;
  const has = o.turnServers.includes(o.failed);
  const turn_servers = has
    ? o.turnServers.map((u) => (u === o.failed ? o.replacement : u))
    : [o.replacement, ...o.turnServers.filter((u) => u !== o.replacement)];
  return {
    failover_id: o.failoverId,
    scenario: 'A',
    signaling: o.signaling.map(httpBase),
    turn: {
      failed: o.failed,
      replacement: o.replacement,
      turn_servers: [...new Set(turn_servers)],
      probe,
      env_file: envFile,
      turn_servers_source: o.turnServersSource ?? 'default',
      shadowed_by: o.shadowedBy ?? [],
    },
    steps: [
      probe
        ? `test ${o.replacement} with a real TURN Allocate (released at once); a dead one stops here`
        : `skip testing ${o.replacement} (--no-probe)`,
      envFile
        ? `replace ${o.failed} with ${o.replacement} in TURN_SERVERS and write it to ${envFile} (backup ${envFile}.bak-<time>)`
        : `replace ${o.failed} with ${o.replacement} in TURN_SERVERS (no env file loaded: not persisted)`,
      'push the configuration to every signaling instance (POST /admin/reload-config)',
      'reconnect the peers on relay (POST /admin/reconnect-turn-peers)',
      `wait for the witness to see them on ${o.replacement} (turn_connection_detected)`,
      'validate the recovery',
    ],
  };
}

/** The instance `failover signaling` found failed by itself, and what it saw. */
export interface DetectedFailure {
  url: string;
  name: string;
  /** "process gone", or how /health went unanswered while the process still runs. */
  why: string;
}

/**
 * The failed instance, for `failover signaling` without --failed: of the signaling instances this
 * state recorded, the one whose process is gone or that leaves /health unanswered `probes` times,
 * `intervalMs` apart on the clock (one slow answer under load is not a failure: a restart drops
 * the agents it holds). Exactly one, or a UsageError that says which to name (several) or that
 * none failed.
 */
export async function failedSignalingInstance(
  state: StateDir,
  o: { clock: Clock; dispatcher?: Dispatcher | undefined; probes?: number; intervalMs?: number },
): Promise<DetectedFailure> {
  const probes = o.probes ?? 3;
  const intervalMs = o.intervalMs ?? 1_000;
  const scan = scanProcesses(state);
  const recs = scan.records.filter((r) => r.role === 'signaling' && r.url);
  // Detection reads what it can: an unreadable record may be the failed instance, so it is named.
  const unread = scan.unreadable.length
    ? ` (${scan.unreadable.map((u) => u.file).join(', ')} no longer parse${scan.unreadable.length === 1 ? 's' : ''}: fix or delete first)`
    : '';
  if (!recs.length)
    throw new UsageError(
      `no signaling instance is recorded in ${state.root}${unread}`,
      'name the failed one with --failed URL',
    );
  // An instance that answers with a certificate this command cannot verify is not a failed one (a
  // restart would serve the same certificate); without any failed instance, its error is the answer.
  const unverified: IfmeshError[] = [];
  const look = async (r: (typeof recs)[number]): Promise<string | undefined> => {
    if (runningPid(state, r) === undefined) return 'process gone';
    for (let i = 0; i < probes; i++) {
      if (i > 0) await o.clock.sleep(intervalMs);
      try {
        if (await answers(r, o.dispatcher, { throwUntrusted: true })) return undefined;
      } catch (err) {
        if (!isUnverifiedCertificate(err)) throw err;
        unverified.push(err);
        return undefined;
      }
    }
    return `/health unanswered ${probes} times over ${((probes - 1) * intervalMs) / 1000} s while its process runs`;
  };
  const looks = await Promise.all(recs.map(async (r) => ({ r, why: await look(r) })));
  const failed = looks.flatMap((l) => (l.why ? [{ url: l.r.url!, name: l.r.name, why: l.why }] : []));
  if (failed.length === 1) return failed[0]!;
  if (failed.length === 0 && unverified.length) throw unverified[0]!;
  if (failed.length === 0)
    throw new UsageError(
      `every signaling instance of ${state.root} runs and answers /health: none failed${unread}`,
      'to restart one anyway, name it: --failed URL (ifmesh status lists them)',
    );
  throw new UsageError(
    `${failed.length} signaling instances failed: ${failed.map((f) => `${f.name} (${f.url}: ${f.why})`).join(', ')}`,
    'name one with --failed URL, or restart them all: ifmesh incident p1',
  );
}

export function planSignalingFailover(o: {
  failoverId: string;
  state: StateDir;
  signaling: string[];
  failed: string;
  stabilizeMs: number;
  /** What `failedSignalingInstance` saw, when --failed was not given. */
  detected?: string | undefined;
}): FailoverPlan {
  const port = Number(/:(\d+)(?:\/|$)/.exec(o.failed)?.[1]);
  const scan = scanProcesses(o.state);
  const rec = scan.records.find(
    (r) =>
      r.role === 'signaling' &&
      (r.port === port || (r.url !== undefined && httpBase(r.url) === httpBase(o.failed))),
  );
  if (!rec?.port)
    throw new UsageError(
      `no signaling instance of ${o.state.root} serves ${o.failed}${scan.unreadable.length ? `, or its record is one of ${scan.unreadable.map((u) => u.file).join(', ')}, which no longer parse` : ''}`,
      scan.unreadable.length
        ? `${scan.unreadable[0]!.fix}; then run this again`
        : 'give --failed the URL of one in `ifmesh status`',
    );
  // Restarted exactly as it was launched: its recorded spec holds the topology's flags (--cluster,
  // TLS, …), its env file and cwd.
  if (!rec.spec)
    throw new UsageError(
      `${rec.name} has no recorded launch spec (started by an older ifmesh)`,
      'start the fleet again with `ifmesh up` or `ifmesh deploy`',
    );
  const launch = { command: rec.spec.command, args: rec.spec.args, cwd: rec.spec.cwd };
  return {
    failover_id: o.failoverId,
    scenario: 'B',
    signaling: o.signaling.map(httpBase),
    signaling_failover: {
      failed: o.failed,
      action: 'restart',
      instance: rec.name,
      port: rec.port,
      ...launch,
      url: rec.url ?? `ws://127.0.0.1:${rec.port}`,
      stabilize_ms: o.stabilizeMs,
      probe_ms: probeEvery(o.stabilizeMs),
      ...(o.detected ? { detected: o.detected } : {}),
    },
    steps: [
      `stop what is left of ${rec.name}${o.detected ? ` (found failed: ${o.detected})` : ''}`,
      `restart ${rec.name} on port ${rec.port}`,
      `monitor it for ${Math.round(o.stabilizeMs / 1000)} s (its /health, failed connections)`,
      'log signaling_server_recovery',
      'validate the recovery',
    ],
  };
}

const probeEvery = (ms: number) => Math.max(1_000, Math.min(30_000, Math.floor(ms / 10)));

/** Reads the nginx configuration `up`/`deploy` wrote (<state>/nginx/nginx.conf) and promotes its first backup. */
export function planPromoteBackup(o: {
  failoverId: string;
  state: StateDir;
  signaling: string[];
  failed: string;
  stabilizeMs: number;
}): FailoverPlan {
  const conf = o.state.nginxConf;
  let text: string;
  try {
    text = readFileSync(conf, 'utf8');
  } catch {
    throw new UsageError(
      `no nginx configuration at ${conf}`,
      'promote-backup needs the stack behind nginx (ifmesh deploy, or up with nginx); use --action restart',
    );
  }
  // The plan nginx was written from; an older stack's config is parsed back instead.
  const nginx = readNginxPlan(path.dirname(conf));
  const listen = nginx?.listenPort ?? Number(/listen 127\.0\.0\.1:(\d+);/.exec(text)?.[1]);
  const upstreams =
    nginx?.upstreams ?? [...text.matchAll(/server 127\.0\.0\.1:(\d+) max_fails/g)].map((m) => Number(m[1]));
  const backups =
    nginx?.backups ?? [...text.matchAll(/server 127\.0\.0\.1:(\d+) backup;/g)].map((m) => Number(m[1]));
  const failedPort = Number(/:(\d+)(?:\/|$)/.exec(o.failed)?.[1]);
  if (backups.includes(failedPort) && upstreams.length > 0)
    return promotePlan(
      o,
      { conf, listen, nginx, failedPort, promoted: upstreams[0]!, already: true },
      {
        before: { upstreams, backups },
        after: { upstreams, backups },
      },
    );
  if (!upstreams.includes(failedPort))
    throw new UsageError(
      `${o.failed} is not an active upstream in ${conf}`,
      `active: ${upstreams.join(', ') || 'none'}`,
    );
  const promoted = backups[0];
  if (promoted === undefined)
    throw new UsageError(`${conf} has no backup instance to promote`, 'use --action restart');
  const after = {
    upstreams: [...upstreams.filter((p) => p !== failedPort), promoted],
    // The failed instance waits as a backup: restarted later, it is a standby again.
    backups: [...backups.slice(1), failedPort],
  };
  return promotePlan(
    o,
    { conf, listen, nginx, failedPort, promoted, already: false },
    { before: { upstreams, backups }, after },
  );
}

function promotePlan(
  o: { failoverId: string; signaling: string[]; failed: string; stabilizeMs: number },
  p: {
    conf: string;
    listen: number;
    nginx: NginxPlan | undefined;
    failedPort: number;
    promoted: number;
    already: boolean;
  },
  { before, after }: Pick<PromoteFailoverPlan, 'before' | 'after'>,
): FailoverPlan {
  const { conf, listen, nginx, failedPort, promoted } = p;
  return {
    failover_id: o.failoverId,
    scenario: 'B',
    signaling: o.signaling.map(httpBase),
    promote_backup: {
      failed: o.failed,
      action: 'promote-backup',
      conf,
      listen_port: listen,
      promoted,
      before,
      after,
      stabilize_ms: o.stabilizeMs,
      probe_ms: probeEvery(o.stabilizeMs),
      ...(p.already ? { already_promoted: true } : {}),
      nginx,
    },
    steps: [
      p.already
        ? `nothing to rewrite: 127.0.0.1:${failedPort} is a backup already, 127.0.0.1:${promoted} active (${conf})`
        : `rewrite ${conf}: 127.0.0.1:${promoted} active, 127.0.0.1:${failedPort} backup`,
      'check it (nginx -t) and reload nginx (start it if it is not running)',
      `monitor 127.0.0.1:${promoted} through nginx for ${Math.round(o.stabilizeMs / 1000)} s (health, failed connections)`,
      'log signaling_server_recovery',
      'validate the recovery',
    ],
  };
}

export function planPartitionFailover(o: {
  failoverId: string;
  signaling: string[];
  agent?: string | undefined;
  staggerMs: number;
}): FailoverPlan {
  return {
    failover_id: o.failoverId,
    scenario: 'C',
    signaling: o.signaling.map(httpBase),
    partition: { agent: o.agent ?? null, stagger_ms: o.staggerMs },
    steps: [
      o.agent
        ? `find ${o.agent}'s peers (GET /agents)`
        : 'find the agent pairs not reported connected (GET /agents, /connections)',
      `ask one end of each pair (the smaller id) to reconnect, ${formatDuration(o.staggerMs)} between agents (POST /admin/reconnect-peers)`,
      'wait until the pairs report connected',
      'validate the recovery',
    ],
  };
}

export function planCertFailover(o: {
  failoverId: string;
  signaling: string[];
  cert: CertRotationPlan;
}): FailoverPlan {
  return {
    failover_id: o.failoverId,
    scenario: 'D',
    signaling: o.signaling.map(httpBase),
    cert: o.cert,
    // What this run will do, not the scenario's whole procedure: a certificate that is not due is
    // not renewed (the drill's dry run said "renew (manual)" for one with 119 days left).
    steps: [
      !o.cert.due
        ? `nothing to renew: ${o.cert.cert} is valid ${o.cert.days_left} more days (renewal under ${o.cert.threshold_days}; --force renews now)`
        : o.cert.method === 'manual'
          ? `renew ${o.cert.cert} by hand (certbot is not installed): ${o.cert.manual_procedure
              .slice(1)
              .map((l) => l.trim())
              .join(' ')}`
          : `renew ${o.cert.cert} (${o.cert.method})`,
      o.cert.restart.length
        ? `restart ${o.cert.restart.map((r) => r.name).join(', ')} one at a time`
        : o.cert.due && o.cert.method !== 'manual'
          ? 'restart the signaling instances serving it one at a time'
          : 'no instance to restart',
      'validate the recovery',
    ],
  };
}

export function planKeysFailover(o: {
  failoverId: string;
  signaling: string[];
  keys: RotationPlan;
}): FailoverPlan {
  return {
    failover_id: o.failoverId,
    scenario: 'E',
    signaling: o.signaling.map(httpBase),
    keys: o.keys,
    steps: ['rotate every agent’s keys (POST /admin/rotate-keys)', 'validate the recovery'],
  };
}

export interface ApplyOptions {
  state: StateDir;
  adminToken: string;
  witness: WitnessTarget;
  /** Each step as a line (a step of the report as its `stepLine`). */
  onStep?: (line: string) => void;
  /** How long peers have to show up on the replacement TURN server (A) or instances to answer. */
  timeoutMs?: number;
  /** Scenario A's probe of the replacement: TURN_USERNAME/TURN_PASSWORD or the local stack's user. */
  turnCredentials?: { username: string; password: string } | null;
  /** Who runs it, in `signaling_server_recovery` (the guide's `whoami`). */
  operator?: string;
}

/** The journal (src/ops/procedure.ts) a scenario's run keeps, and the command that converges after a kill. */
export function failoverProcedure(plan: FailoverPlan): {
  procedure: FailoverProcedure;
  summary: string;
  rerun: string;
} {
  const summary = `failover ${plan.failover_id}`;
  if (plan.turn)
    return {
      procedure: 'failover-turn',
      summary,
      rerun: `ifmesh failover turn --failed ${plan.turn.failed} --replacement ${plan.turn.replacement}`,
    };
  if (plan.signaling_failover)
    return {
      procedure: 'failover-signaling',
      summary,
      rerun: `ifmesh failover signaling --failed ${plan.signaling_failover.failed} --action restart`,
    };
  if (plan.promote_backup)
    return {
      procedure: 'failover-promote-backup',
      summary,
      rerun: `ifmesh failover signaling --failed ${plan.promote_backup.failed} --action promote-backup`,
    };
  if (plan.partition)
    return {
      procedure: 'failover-partition',
      summary,
      rerun: `ifmesh failover partition${plan.partition.agent ? ` --agent ${plan.partition.agent}` : ''}`,
    };
  if (plan.cert)
    return {
      procedure: 'failover-cert',
      summary,
      rerun: `ifmesh failover cert --cert ${plan.cert.cert} --key ${plan.cert.key}`,
    };
  return { procedure: 'failover-keys', summary, rerun: 'ifmesh failover keys' };
}

type FailoverProcedure = Extract<ProcedureName, `failover-${string}`>;
type Journal = ProcedureJournal<FailoverProcedure>;

export async function applyFailover(
  plan: FailoverPlan,
  o: ApplyOptions,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher' | 'exec'> & Partial<Pick<OpContext, 'env'>>,
): Promise<FailoverReport> {
  const report: FailoverReport = {
    failover_id: plan.failover_id,
    scenario: plan.scenario,
    ok: true,
    steps: [],
    recovery: { started_at: new Date(ctx.clock.now()).toISOString(), restored_at: null, recovery_ms: null },
  };
  const tag = (e: WitnessEvent): WitnessEvent => ({ ...e, failover_id: plan.failover_id });
  // Events carry the procedure's time (ctx.clock), but the wait for the witness to take them is a
  // network deadline, real whatever clock drives the procedure: on a fake clock that a test steps
  // through a 5-minute window, that deadline would expire at the first step and spool the events.
  const witnessClock: Clock = { ...systemClock, now: () => ctx.clock.now() };
  const log = (events: WitnessEvent[]) =>
    logEvents(o.witness, 'ifmesh-failover', events.map(tag), {
      dispatcher: ctx.dispatcher,
      clock: witnessClock,
    });
  const step = async (name: string, ok: boolean, detail: string) => {
    report.steps.push({ step: name, ok, detail });
    if (!ok) report.ok = false;
    o.onStep?.(stepLine({ step: name, ok, detail }));
    await log([{ event: 'failover_step', metadata: { scenario: plan.scenario, step: name, ok, detail } }]);
  };
  // The reused ops (certs, rotate-keys) log their own events: they carry the failover id too.
  const tagged: WitnessTarget = { ...o.witness, tags: { failover_id: plan.failover_id } };
  const { lock, note } = await takeLock(o.state, `failover ${plan.scenario} ${plan.failover_id}`, ctx);
  const j = failoverProcedure(plan);
  const journal: Journal = ProcedureJournal.begin(o.state, j.procedure, j, ctx);
  const started = ctx.clock.now();
  report.recovery.started_at = new Date(started).toISOString();
  // The moment service is back: the recovery time `failover validate` holds against the guide's target.
  const restored: Restored = async () => {
    if (report.recovery.restored_at) return;
    const at = ctx.clock.now();
    report.recovery = {
      ...report.recovery,
      restored_at: new Date(at).toISOString(),
      recovery_ms: at - started,
    };
    await log([
      {
        event: 'failover_service_restored',
        metadata: {
          scenario: plan.scenario,
          recovery_ms: at - started,
          started_at: report.recovery.started_at,
        },
      },
    ]);
  };
  let failed: unknown;
  try {
    await log([{ event: 'failover_initiated', metadata: { scenario: plan.scenario, steps: plan.steps } }]);
    journal.step('locked');
    if (note) await step('lock', true, note);
    const s = { step, log, restored, journal };
    if (plan.turn) await applyTurn(plan, plan.turn, o, ctx, report, s);
    if (plan.signaling_failover) await applySignaling(plan, plan.signaling_failover, o, ctx, report, s);
    if (plan.promote_backup) await applyPromote(plan, plan.promote_backup, o, ctx, report, s);
    if (plan.partition) await applyPartition(plan, plan.partition, o, ctx, report, s);
    if (plan.cert) {
      report.cert = await applyCertRotation(
        plan.cert,
        { state: o.state, witness: tagged, onStep: o.onStep, journal },
        ctx,
      );
      await step('certificate rotation', report.cert.ok, certStepDetail(report.cert));
      // A certificate that was not due is the state a renewal would reach: like failover turn with
      // nothing to move, service counts as restored at once.
      if (report.cert.ok) await restored();
    }
    if (plan.keys) {
      report.keys = await applyRotation(
        plan.keys,
        // Scenario E never declares an incident (it has no --emergency): that boundary is not its.
        {
          adminToken: o.adminToken,
          witness: tagged,
          journal: journal as StepMarks<KeyRotationStep>,
          deployedAgents: (await currentRelease(o.state).catch(() => undefined))?.agents,
        },
        ctx,
      );
      await step(
        'key rotation',
        report.keys.ok,
        `${report.keys.completed}/${report.keys.total} agents rotated${report.keys.pending.length ? `; no answer from ${report.keys.pending.join(', ')}` : ''}${report.keys.not_registered.length ? `; not registered, so not rotated: ${report.keys.not_registered.join(', ')}` : ''}`,
      );
      if (report.keys.ok) await restored();
    }
    await log([
      {
        event: 'failover_completed',
        metadata: { scenario: plan.scenario, ok: report.ok, recovery_ms: report.recovery.recovery_ms },
      },
    ]);
    return report;
  } catch (err) {
    failed = err;
    // A step that threw (nginx refusing its configuration, an instance API answering 500) ends the
    // run too: the trail says where and why, so no failover is left "initiated" for ever. A refused
    // replacement (scenario A's probe) has logged its own ending already.
    const ended = report.steps.some((x) => !x.ok && x.step === 'test the replacement');
    if (!ended) {
      const why = (err as Error).message.split('\n')[0]!;
      await step('error', false, why);
      await log([
        {
          event: 'failover_completed',
          metadata: {
            scenario: plan.scenario,
            ok: false,
            recovery_ms: report.recovery.recovery_ms,
            error: why,
          },
        },
      ]);
    }
    throw err;
  } finally {
    journal.finish(failed);
    await lock.release();
  }
}

/** How often scenario A asks the replacement again while it waits for the peers on it. */
const REPROBE_MS = 5_000;

type Step = (name: string, ok: boolean, detail: string) => Promise<void>;
type Log = (e: WitnessEvent[]) => Promise<void>;
type Restored = () => Promise<void>;
/** What every scenario's apply reports through: its steps, the witness, the restored moment, its journal. */
interface Scope {
  step: Step;
  log: Log;
  restored: Restored;
  journal: Journal;
}

/**
 * The deploy lock, so no deploy, canary or rollback runs under a failover. An open incident holds it
 * (persistent) to halt deployments, and a failover is how that incident is recovered from: then the
 * failover runs under its own lock instead, so two failovers still never overlap.
 */
async function takeLock(
  state: StateDir,
  purpose: string,
  ctx: Pick<OpContext, 'clock'>,
): Promise<{ lock: HeldLock; note?: string }> {
  try {
    return { lock: await acquireLock(state, 'deploy', purpose, ctx.clock) };
  } catch (err) {
    let holder: { persistent?: boolean; purpose?: string } | undefined;
    try {
      holder = JSON.parse(readFileSync(state.lock('deploy'), 'utf8'));
    } catch {
      holder = undefined;
    }
    if (!holder?.persistent) throw err;
    return {
      lock: await acquireLock(state, 'failover', purpose, ctx.clock),
      note: `the deploy lock is held by ${holder.purpose ?? 'an open incident'}: deployments stay halted, this failover holds the failover lock`,
    };
  }
}

async function admin(
  base: string,
  p: string,
  body: unknown,
  token: string,
  ctx: Pick<OpContext, 'signal' | 'dispatcher'>,
): Promise<Record<string, unknown>> {
  const r = await httpRequest(`${base}${p}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    timeoutMs: 10_000,
    dispatcher: ctx.dispatcher,
    signal: ctx.signal,
  });
  if (r.status !== 200)
    throw new CheckFailedError(`${base}${p} answered ${r.status}: ${r.text.slice(0, 200)}`);
  return r.json as Record<string, unknown>;
}

/**
 * Where an admin push goes: every instance when they share nothing (each reaches its own agents),
 * one when they share a Redis cluster (a push there reaches every agent already; more would repeat it).
 */
async function pushTargets(
  bases: string[],
  ctx: Pick<OpContext, 'signal' | 'dispatcher'>,
): Promise<string[]> {
  for (const b of bases) {
    const r = await httpRequest(`${b}/health`, {
      timeoutMs: 5_000,
      dispatcher: ctx.dispatcher,
      signal: ctx.signal,
    }).catch(() => undefined);
    if ((r?.json as { cluster?: string } | undefined)?.cluster === 'redis') return [b];
  }
  return bases;
}

async function applyTurn(
  plan: FailoverPlan,
  t: TurnFailoverPlan,
  o: ApplyOptions,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
  report: FailoverReport,
  { step, log, restored, journal }: Scope,
): Promise<void> {
  // Step 1: the replacement allocates, or nothing is switched.
  let probe: NonNullable<FailoverReport['turn']>['probe'] = null;
  if (t.probe) {
    const p = o.turnCredentials
      ? await probeReplacement(t.replacement, o.turnCredentials, ctx.clock)
      : {
          ok: false,
          detail: 'no TURN credentials to test the replacement with',
          error: new UnauthorizedError(
            `no TURN credentials to test ${t.replacement} with`,
            'set TURN_USERNAME and TURN_PASSWORD, or pass --no-probe',
          ),
        };
    await step('test the replacement', p.ok, p.detail);
    if (!p.ok) {
      await log([
        {
          event: 'failover_completed',
          metadata: {
            scenario: plan.scenario,
            ok: false,
            refused: 'replacement TURN server failed its test',
          },
        },
      ]);
      throw p.error;
    }
    probe = { relayed: p.relayed ?? null, rtt_ms: p.rtt_ms ?? null };
  }
  journal.step('probed');
  await log([
    {
      event: 'turn_server_failover',
      metadata: { failed_server: t.failed, replacement_server: t.replacement },
    },
  ]);
  // Step 2: the env file, and the launch environment of instances recorded with their own list, so
  // the next restart keeps the replacement.
  const launch = rewriteLaunchTurnServers(o.state, t.shadowed_by, t.turn_servers);
  const persisted = persistTurnServers(
    t.env_file,
    t.turn_servers,
    t.turn_servers_source,
    launch.shadowedBy,
    ctx.clock.now(),
  );
  const releases = rewriteReleaseTurnServers(o.state, t.failed, t.replacement);
  const relaunch = [
    launch.rewritten.length
      ? `; recorded launch environment of ${launch.rewritten.join(', ')} updated (restarts keep it)`
      : '',
    releases.rewritten.length
      ? `; agent specs of release ${releases.rewritten.join(', ')} updated (a canary or rollback keeps it)`
      : '',
    releases.unreadable.length
      ? `; release ${releases.unreadable.join(', ')} could not be read: a rollback to it may bring ${t.failed} back`
      : '',
  ].join('');
  await step('persist TURN_SERVERS', persisted.ok, `${persisted.detail}${relaunch}`);
  journal.step('persisted');
  const env_file = {
    file: t.env_file,
    backup: persisted.backup,
    persisted: persisted.ok && t.env_file !== null,
  };
  const targets = await pushTargets(plan.signaling, ctx);
  let pushed = 0;
  for (const b of targets)
    pushed += Number(
      (await admin(b, '/admin/reload-config', { turn_servers: t.turn_servers }, o.adminToken, ctx)).pushed ??
        0,
    );
  await step('reload-config', true, `TURN_SERVERS=${t.turn_servers.join(',')} pushed to ${pushed} agents`);
  journal.step('pushed');
  const reconnected: string[] = [];
  for (const b of targets)
    reconnected.push(
      ...(((await admin(b, '/admin/reconnect-turn-peers', {}, o.adminToken, ctx)).agents as
        | string[]
        | undefined) ?? []),
    );
  await step('reconnect-turn-peers', true, `${reconnected.length} agents on relay asked to reconnect`);
  journal.step('reconnected');
  // No relayed peer: none went through the failed server, so none has to show up on the replacement.
  // Waiting for one would only time out and fail a failover that had nothing to move.
  if (reconnected.length === 0) {
    report.turn = { probe, env_file, pushed, reconnected, on_replacement: [], nothing_to_move: true };
    await step('peers on the replacement', true, `no agent was relayed through ${t.failed}: nothing to move`);
    await restored();
    await log([
      {
        event: 'turn_server_failover_complete',
        metadata: {
          failed_server: t.failed,
          replacement_server: t.replacement,
          agents: [],
          nothing_to_move: true,
        },
      },
    ]);
    return;
  }
  const since = new Date(ctx.clock.now() - 1_000).toISOString();
  const onReplacement = new Set<string>();
  // The replacement allocated at step 1, but may die while the peers move to it: asked again every
  // REPROBE_MS, so a dead one ends the wait with its reason instead of running out the timeout.
  let replacementDown: string | undefined;
  let probedAt = ctx.clock.now();
  const stillServing = async () => {
    if (!t.probe || !o.turnCredentials || ctx.clock.now() - probedAt < REPROBE_MS) return true;
    probedAt = ctx.clock.now();
    const p = await probeReplacement(t.replacement, o.turnCredentials, ctx.clock);
    if (!p.ok) replacementDown = p.error?.message ?? p.detail;
    return p.ok;
  };
  const waited = await waitFor(
    async () => {
      if (!(await stillServing())) return true;
      const r = await queryWitness(
        o.witness,
        {
          query: { event: 'turn_connection_detected', 'metadata.turn_server': t.replacement },
          time_range: { from: since, to: 'now' },
        },
        ctx,
      ).catch(() => undefined);
      // A pair is on the replacement when either end relays through it: the end asked to reconnect
      // may offer from its NAT's mapping to its peer's relay (behind symmetric NATs, measured in the
      // NAT lab), and then its peer is the one that reports the relay.
      for (const e of (r?.results ?? []) as { agent_id?: string; peer_id?: string }[])
        for (const a of [e.agent_id, e.peer_id]) if (a) onReplacement.add(a);
      return reconnected.every((a) => onReplacement.has(a));
    },
    { timeoutMs: o.timeoutMs ?? 60_000, intervalMs: 500 },
    ctx.clock,
    ctx.signal,
  );
  const missing = reconnected.filter((a) => !onReplacement.has(a));
  const seen = waited && missing.length === 0;
  report.turn = {
    probe,
    env_file,
    pushed,
    reconnected,
    on_replacement: [...onReplacement].sort(),
    nothing_to_move: false,
  };
  await step(
    'peers on the replacement',
    seen,
    seen
      ? `${reconnected.join(', ')} on pairs relayed through ${t.replacement} (${onReplacement.size} agents at their ends)`
      : `not seen on ${t.replacement}: ${missing.join(', ')}${
          replacementDown
            ? `; it stopped serving during the failover (${replacementDown}): bring it back or name another --replacement, then run this failover again`
            : ''
        }`,
  );
  if (!seen) return;
  await restored();
  await log([
    {
      event: 'turn_server_failover_complete',
      metadata: {
        failed_server: t.failed,
        replacement_server: t.replacement,
        agents: [...onReplacement].sort(),
      },
    },
  ]);
}

async function applySignaling(
  plan: FailoverPlan,
  s: SignalingFailoverPlan,
  o: ApplyOptions,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
  report: FailoverReport,
  { step, log, restored, journal }: Scope,
): Promise<void> {
  const sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'failover' });
  const old = sup.running(s.instance) ?? null;
  // Through the fleet's restart path, even when it still has a pid (a hung instance goes too).
  const restarted = await restartRecorded(
    o.state,
    s.instance,
    {
      why: `restarted by failover signaling (${s.failed})`,
      evenIfHealthy: true,
      timeoutMs: o.timeoutMs ?? 15_000,
    },
    ctx,
  );
  const pid = restarted.pid;
  const health = `${httpBase(s.url)}/health`;
  const up = restarted.ok;
  journal.step('restarted');
  await step(
    'restart',
    up,
    up
      ? `${s.instance} restarted (pid ${pid}), healthy`
      : restarted.pid !== null
        ? `${s.instance} ${restarted.detail}`
        : `${s.instance} never answered ${health}: ${restarted.detail}`,
  );
  const result: NonNullable<FailoverReport['signaling_failover']> = {
    instance: s.instance,
    old_pid: old,
    new_pid: pid,
  };
  report.signaling_failover = result;
  if (!up) return;
  await restored();
  const window = await watch(health, s.stabilize_ms, s.probe_ms, plan, o, ctx);
  Object.assign(result, window);
  await step(
    'stabilisation',
    window.probe_failures === 0,
    `${window.probes - window.probe_failures}/${window.probes} health probes ok over ${Math.round(s.stabilize_ms / 1000)} s`,
  );
  const failed = failedConnectionsStep(window);
  await step('failed connections', failed.ok, failed.detail);
  await log([
    recoveryEvent({
      failed: s.failed,
      action: 'restart',
      operator: o.operator ?? 'unknown',
      window,
      extra: { instance: s.instance, old_pid: old, new_pid: pid },
    }),
  ]);
}

/** The stabilisation window over `health`, counting failed connections on every instance. */
function watch(
  health: string,
  windowMs: number,
  probeMs: number,
  plan: FailoverPlan,
  o: ApplyOptions,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
): Promise<StabilisationReport> {
  const healthy = () =>
    httpRequest(health, { timeoutMs: 2_000, dispatcher: ctx.dispatcher, signal: ctx.signal }).then(
      (a) => a.status === 200,
      () => false,
    );
  return stabilise({ healthy, windowMs, probeMs, signaling: plan.signaling, witness: o.witness }, ctx);
}

async function applyPromote(
  plan: FailoverPlan,
  p: PromoteFailoverPlan,
  o: ApplyOptions,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher' | 'exec'>,
  report: FailoverReport,
  { step, log, restored, journal }: Scope,
): Promise<void> {
  const sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'failover' });
  // The front door as the stack recorded it: `nginx` under `up`, `deploy-nginx` under `deploy`.
  const rec = sup.list().find((r) => r.role === 'nginx' && r.port === p.listen_port);
  const name = rec?.name ?? 'nginx';
  const conf: NginxPlan = {
    ...(p.nginx ?? { prefix: path.dirname(p.conf), listenPort: p.listen_port }),
    upstreams: p.after.upstreams,
    backups: p.after.backups,
  };
  // Under nginx's restart lock: the supervisor restarts a dead nginx too, and two masters started
  // at once on one port would leave one of them failed.
  const { running, pid } = await withRestartLock(
    o.state,
    name,
    'failover: promote a backup',
    ctx,
    async () => {
      let running = sup.running(name) !== undefined;
      let pid: number;
      try {
        pid = await applyNginx(conf, running, ctx);
      } catch (err) {
        // Died between the look and the reload: started instead, with the promoted configuration.
        if (!running || sup.running(name) !== undefined) throw err;
        running = false;
        pid = await applyNginx(conf, false, ctx);
      }
      if (!running)
        sup.adopt(
          {
            name,
            role: 'nginx',
            port: p.listen_port,
            url: rec?.url ?? `http://127.0.0.1:${p.listen_port}`,
          },
          pid,
          rec?.supervised ? { supervised: true } : {},
        );
      return { running, pid };
    },
  );
  journal.step('promoted');
  await step(
    'promote backup',
    true,
    `127.0.0.1:${p.promoted} is the active upstream${p.already_promoted ? ' (it already was)' : ''} (nginx ${running ? 'reloaded' : `started, pid ${pid}`})`,
  );
  await restored();
  const window = await watch(
    `http://127.0.0.1:${p.listen_port}/health`,
    p.stabilize_ms,
    p.probe_ms,
    plan,
    o,
    ctx,
  );
  report.promote_backup = { promoted: p.promoted, nginx_pid: pid, ...window };
  // The probes go through nginx; nginx itself must still run at the end (workers a killed master
  // left behind answer for a while, on a configuration nothing manages any more).
  const gone = sup.running(name) === undefined;
  await step(
    'stabilisation',
    window.probe_failures === 0 && !gone,
    `${window.probes - window.probe_failures}/${window.probes} health probes through nginx ok over ${Math.round(p.stabilize_ms / 1000)} s${gone ? `; nginx (${name}, pid ${pid}) is not running${window.probe_failures === 0 ? ' (the workers it left answered)' : ''}: run this failover again to start it with the promoted configuration` : ''}`,
  );
  const failed = failedConnectionsStep(window);
  await step('failed connections', failed.ok, failed.detail);
  await log([
    recoveryEvent({
      failed: p.failed,
      action: 'promote_backup',
      operator: o.operator ?? 'unknown',
      window,
      extra: { promoted: `127.0.0.1:${p.promoted}`, nginx_pid: pid },
    }),
  ]);
}

async function gather<T>(
  bases: string[],
  p: string,
  key: string,
  ctx: Pick<OpContext, 'signal' | 'dispatcher'>,
): Promise<T[]> {
  const out: T[] = [];
  for (const b of bases) {
    const r = await httpRequest(`${b}${p}`, {
      timeoutMs: 5_000,
      dispatcher: ctx.dispatcher,
      signal: ctx.signal,
    });
    if (r.status !== 200) throw new CheckFailedError(`${b}${p} answered ${r.status}`);
    out.push(...(((r.json as Record<string, unknown>)[key] as T[] | undefined) ?? []));
  }
  return out;
}

async function applyPartition(
  plan: FailoverPlan,
  c: PartitionFailoverPlan,
  o: ApplyOptions,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
  report: FailoverReport,
  { step, log, restored, journal }: Scope,
): Promise<void> {
  type Conn = { agent_id: string; peer_id: string; state: string };
  const reports = () => gather<Conn>(plan.signaling, '/connections', 'connections', ctx);
  const agents = [
    ...new Map(
      (await gather<{ agent_id: string; mesh?: string }>(plan.signaling, '/agents', 'agents', ctx)).map(
        (a) => [a.agent_id, a.mesh ?? 'default'],
      ),
    ),
  ];
  if (c.agent && !agents.some(([id]) => id === c.agent))
    throw new CheckFailedError(`agent ${c.agent} is not registered`, 'see GET /agents, or `ifmesh status`');
  const connected = (list: Conn[], a: string, b: string) =>
    list.some((r) => r.state === 'connected' && r.agent_id === a && r.peer_id === b) &&
    !list.some(
      (r) =>
        r.state !== 'connected' &&
        ((r.agent_id === a && r.peer_id === b) || (r.agent_id === b && r.peer_id === a)),
    );
  const before = await reports();
  // Pairs within a mesh; the smaller id offers (CONTRACT §1.5), so only it is asked.
  const asked: Record<string, string[]> = {};
  for (const [a, meshA] of agents)
    for (const [b, meshB] of agents) {
      if (a >= b || meshA !== meshB) continue;
      if (c.agent ? a !== c.agent && b !== c.agent : connected(before, a, b) || connected(before, b, a))
        continue;
      asked[a] = [...(asked[a] ?? []), b];
    }
  const offerers = Object.keys(asked).sort();
  const targets = await pushTargets(plan.signaling, ctx);
  journal.step('pairs_found');
  await step(
    'find pairs',
    true,
    offerers.length
      ? `${offerers.map((a) => `${a} → ${asked[a]!.join(', ')}`).join('; ')}`
      : 'every pair is connected',
  );
  for (const [i, a] of offerers.entries()) {
    if (i > 0) await ctx.clock.sleep(c.stagger_ms, ctx.signal);
    let pushed = 0;
    for (const b of targets)
      pushed += Number(
        (await admin(b, '/admin/reconnect-peers', { peers: { [a]: asked[a] } }, o.adminToken, ctx)).pushed ??
          0,
      );
    await log([
      {
        event: 'mesh_healing_manual_triggered',
        agent_id: a,
        metadata: { peers_reconnecting: asked[a]!.length, peers: asked[a], pushed },
      },
    ]);
    o.onStep?.(
      `${a} reconnecting to ${asked[a]!.join(', ')}${pushed ? '' : ' (not reached: no instance holds it)'}`,
    );
  }
  journal.step('reconnect_asked');
  const healed = await waitFor(
    async () => {
      const now = await reports().catch(() => []);
      return offerers.every((a) => asked[a]!.every((b) => connected(now, a, b) || connected(now, b, a)));
    },
    { timeoutMs: o.timeoutMs ?? 60_000, intervalMs: 250 },
    ctx.clock,
    ctx.signal,
  );
  report.partition = { reconnected: asked, healed };
  if (healed) await restored();
  const pairs = offerers.reduce((n, a) => n + asked[a]!.length, 0);
  await step(
    'mesh healed',
    healed,
    healed ? `${pairs} pairs connected again` : `${pairs} pairs not all connected in time`,
  );
}

/** What the certificate step did, in the words an operator reads: renewed, not due, or why not. */
function certStepDetail(r: CertRotationReport): string {
  if (!r.ok) return r.problems.join('; ');
  if (r.renewed) return `renewed; expires ${r.new_expiry ?? 'unknown'}`;
  return `not renewed: ${r.skipped ?? 'not due'}`;
}
