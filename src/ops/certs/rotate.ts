// Certificate rotation (the runbook's certificate-rotation-procedure.sh): renew only when fewer
// than the threshold's days are left (the runbook's `-lt 7`; `force` renews anyway), back up the old
// files, renew (certbot when installed, a development self-signed certificate on request, otherwise
// the manual procedure), then restart the signaling instances serving the certificate ONE AT A TIME,
// each healthy again before the next goes down, so agents always have an instance to fail over to.
import { closeSync, existsSync, promises as fs, fsyncSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { Agent } from 'undici';
import type { Trust } from '../../clients/tls-trust.js';
import { CheckFailedError, UsageError } from '../../errors.js';
import { certbotRenew } from '../../exec/certbot.js';
import { selfSignedCert } from '../../exec/openssl.js';
import { listProcesses } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { hostOf } from '../deploy/endpoints.js';
import { logEvents, type WitnessTarget } from '../events.js';
import { restartRecorded } from '../fleet/restart.js';
import { DEFAULT_THRESHOLDS } from '../monitoring/thresholds.js';
import { type CertRotationStep, type StepMarks, withProcedure } from '../procedure.js';
import { hasBinary, type OpContext } from '../shared.js';
import { type CertCheck, checkCertificate, fleetTrustProblems, readCertificateChain } from './check.js';
import { instancesNotServing, instancesServing } from './instances.js';

export type RenewMethod = 'self-signed-dev' | 'certbot' | 'manual';

export interface CertRotationPlan {
  cert: string;
  key: string;
  method: RenewMethod;
  /** certbot's certificate name: the certificate's CN. */
  domain: string;
  old_expiry: string;
  /** Whole days left now, floored as the runbook's shell arithmetic does. */
  days_left: number;
  /** Renewal happens under this many days left (the runbook's 7). */
  threshold_days: number;
  /** Renew whatever the days left (certbot --force-renewal, which the CA rate-limits). */
  force: boolean;
  /** Whether anything will be done: under the threshold, or forced. */
  due: boolean;
  /**
   * A rotation killed while it installed the new pair left it staged (<file>.rotating): this run
   * installs it first, and the certificate judged is that staged one.
   */
  finish_install: boolean;
  /** certbot's --config-dir (undefined: /etc/letsencrypt). */
  certbot_config_dir?: string | undefined;
  backups: { from: string; to: string }[];
  /**
   * Restarted in this order, one at a time: every instance serving the certificate when it is
   * renewed; when it is not due, those started before the certificate file last changed (they still
   * serve the previous one: a rotation killed before it restarted them, or a pair replaced by hand).
   */
  restart: { name: string; pid: number; url: string | undefined }[];
  /** Running signaling instances not started with this certificate (--tls-cert or SIGNALING_TLS_CERT): left alone. */
  not_restarted: string[];
  /** Dev certificates' lifetime. */
  days: number;
  manual_procedure: string[];
}

export interface InstanceRestart {
  name: string;
  old_pid: number;
  new_pid: number | null;
  healthy: boolean;
}

export interface CertRotationReport {
  plan: CertRotationPlan;
  dry_run: boolean;
  /** true once renewed and every instance is back; false when a human must act (manual, failure). */
  ok: boolean;
  renewed: boolean;
  /** Why nothing was renewed when the certificate was not due (`ok` is true then). */
  skipped: string | null;
  new_expiry: string | null;
  restarts: InstanceRestart[];
  problems: string[];
}

function manualProcedure(cert: string, key: string): string[] {
  return [
    'certbot is not installed: renew by hand, then rotate with the new files in place:',
    `  1. obtain a new certificate and key for this host from your CA`,
    `  2. install them: cp NEW.crt ${cert} && cp NEW.key ${key} && chmod 600 ${key}`,
    `  3. check them: ifmesh certs check --cert ${cert} --key ${key}`,
    `  4. restart the instances serving it, one at a time: ifmesh certs rotate --cert ${cert} --key ${key} (with the new pair in place and not due, it restarts only the instances still on the old one)`,
  ];
}

const DAY_MS = 86_400_000;

/** The hosts the fleet's clients dial the certificate's servers at: those instances and nginx. */
function fleetHosts(state: StateDir, instances: { url?: string | null | undefined }[]): string[] {
  const nginx = listProcesses(state)
    .filter((r) => r.role === 'nginx' && r.url && /^(wss|https):/.test(r.url))
    .map((r) => r.url!);
  return [...new Set([...instances.flatMap((i) => (i.url ? [i.url] : [])), ...nginx])].map(hostOf);
}

/**
 * The CA the fleet verifies its instances against (--ca, IFMESH_CA_FILE), unless it is the
 * certificate being rotated itself (a self-signed certificate trusted as such, replaced in place).
 */
function fleetCa(tls: Trust | undefined, cert: string): Trust | undefined {
  return tls && path.resolve(tls.caFile) !== path.resolve(cert) ? tls : undefined;
}

export async function planCertRotation(
  o: {
    cert: string;
    key: string;
    selfSignedDev: boolean;
    state: StateDir;
    days: number;
    /** Renew under this many days left (fractions allowed: 36 h is 1.5); the runbook's 7 by default. */
    thresholdDays?: number | undefined;
    force?: boolean | undefined;
    certbotConfigDir?: string | undefined;
  },
  ctx: Pick<OpContext, 'exec' | 'clock' | 'tls'>,
): Promise<CertRotationPlan> {
  const ca = fleetCa(ctx.tls, o.cert);
  // A fleet that trusts a CA of its own: a self-signed certificate would be refused by every agent
  // and command that verifies against it, and the fleet would go dark behind a "healthy" restart.
  if (o.selfSignedDev && ca)
    throw new UsageError(
      `--self-signed-dev is refused: the fleet verifies its instances against ${ca.caFile} (--ca or IFMESH_CA_FILE), which a self-signed certificate does not chain to`,
      'install a certificate that CA issued (renew by hand), or renew with certbot',
    );
  const now = ctx.clock.now();
  const staged = stagedPair(o.cert, o.key);
  // A pair an interrupted rotation staged is what this run installs: judged instead of the old one.
  const current: CertCheck = await checkCertificate({
    cert: staged ? staged.cert : o.cert,
    key: staged ? staged.key : o.key,
    warnDays: 0,
    now,
  });
  const threshold = o.thresholdDays ?? DEFAULT_THRESHOLDS.certificate_days;
  const force = Boolean(o.force);
  const due = force || Date.parse(current.not_after) - now < threshold * DAY_MS;
  const method: RenewMethod = o.selfSignedDev
    ? 'self-signed-dev'
    : (await hasBinary(ctx, 'certbot'))
      ? 'certbot'
      : 'manual';
  const stamp = Math.floor(now / 1000);
  const cn = /CN=([^,\n]+)/.exec(current.subject)?.[1] ?? 'localhost';
  const acts = due && method !== 'manual';
  const restart = (
    acts
      ? instancesServing(o.state, o.cert)
      : due
        ? []
        : staleInstances(o.state, o.cert, staged !== undefined)
  ).map((i) => ({ name: i.name, pid: i.pid, url: i.url }));
  // Restarting onto the installed pair as it is (an operator's copy, a staged pair): one the fleet's
  // clients would refuse is refused here, dry run included, before any instance goes down with it.
  if (ca && restart.length && !acts) {
    const refused = fleetTrustProblems(readCertificateChain(staged ? staged.cert : o.cert), {
      caFile: ca.caFile,
      hosts: fleetHosts(o.state, restart),
    });
    if (refused.length)
      throw new CheckFailedError(
        `refusing to restart ${restart.map((r) => r.name).join(', ')} onto ${staged ? staged.cert : o.cert}: ${refused.join('; ')}`,
        'install a certificate that CA issued for those hosts (ifmesh certs check shows what it names), then run ifmesh certs rotate again',
        'certificate_untrusted',
      );
  }
  return {
    cert: o.cert,
    key: o.key,
    method,
    domain: cn,
    old_expiry: current.not_after,
    days_left: current.days_left,
    threshold_days: threshold,
    force,
    due,
    finish_install: staged !== undefined,
    ...(o.certbotConfigDir ? { certbot_config_dir: o.certbotConfigDir } : {}),
    backups: acts ? [o.cert, o.key].map((f) => ({ from: f, to: `${f}.backup.${stamp}` })) : [],
    restart,
    not_restarted: acts ? instancesNotServing(o.state, o.cert) : [],
    days: o.days,
    manual_procedure: due && method === 'manual' ? manualProcedure(o.cert, o.key) : [],
  };
}

/** Where a rotation stages the new file beside `file` before it installs it. */
const stagedName = (file: string) => `${file}.rotating`;

/**
 * The pair an interrupted rotation staged, when its installation did not finish. The certificate is
 * staged last and installed last, so a staged certificate means a complete pair: its key is still
 * staged, or already installed (killed between the two renames).
 */
function stagedPair(cert: string, key: string): { cert: string; key: string } | undefined {
  if (!existsSync(stagedName(cert))) return undefined;
  return { cert: stagedName(cert), key: existsSync(stagedName(key)) ? stagedName(key) : key };
}

/** Installs a staged pair: the key, then the certificate (stagedPair relies on that order). */
async function installStaged(
  cert: string,
  key: string,
  journal: StepMarks<CertRotationStep> | undefined,
): Promise<void> {
  if (existsSync(stagedName(key))) await fs.rename(stagedName(key), key);
  syncDir(key);
  journal?.step('key_installed');
  await fs.rename(stagedName(cert), cert);
  syncDir(cert);
  journal?.step('installed');
}

/**
 * Instances serving `cert` that started before it last changed: they hold the previous pair. Also
 * every serving instance when this run is about to install a staged pair.
 */
function staleInstances(state: StateDir, cert: string, installing: boolean) {
  const changed = statSync(cert, { throwIfNoEntry: false })?.mtimeMs;
  return instancesServing(state, cert).filter(
    (i) => installing || (changed !== undefined && Date.parse(i.started_at) < changed),
  );
}

/**
 * Writes a copy of `from` as `file`'s staged file (fsynced, `mode`, owned like `file`), so a crash
 * leaves either no staged file or a whole one.
 */
async function stageFile(file: string, from: string, mode: number): Promise<void> {
  const staged = stagedName(file);
  const tmp = `${staged}.${process.pid}.tmp`;
  await fs.copyFile(from, tmp);
  await fs.chmod(tmp, mode);
  // Run as root for services that run as their own user (systemd units as `ifmesh`): the new key
  // keeps the owner of the one it replaces, or the restarted instance could not read it.
  const old = await fs.stat(file).catch(() => undefined);
  if (old && process.getuid?.() === 0) await fs.chown(tmp, old.uid, old.gid);
  const fd = await fs.open(tmp, 'r+');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
  await fs.rename(tmp, staged);
}

function syncDir(file: string): void {
  try {
    const fd = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // not possible everywhere; the rename is atomic all the same
  }
}

export async function applyCertRotation(
  plan: CertRotationPlan,
  o: {
    state: StateDir;
    witness?: WitnessTarget | undefined;
    healthTimeoutMs?: number;
    onStep?: (line: string) => void;
    /** The journal of the procedure running it (certs rotate, failover cert): its boundaries. */
    journal?: StepMarks<CertRotationStep> | undefined;
  },
  ctx: Pick<OpContext, 'exec' | 'clock' | 'signal' | 'dispatcher' | 'tls'>,
): Promise<CertRotationReport> {
  const report: CertRotationReport = {
    plan,
    dry_run: false,
    ok: false,
    renewed: false,
    skipped: null,
    new_expiry: null,
    restarts: [],
    problems: [],
  };
  if (plan.finish_install) {
    await installStaged(plan.cert, plan.key, o.journal);
    o.onStep?.(`installed the pair an interrupted rotation staged (${stagedName(plan.cert)})`);
  }
  if (!plan.due) {
    // The runbook's else branch: "✓ Certificate is valid for N more days". No CA call at all.
    report.skipped = `valid for ${plan.days_left} more days; renewal happens under ${plan.threshold_days} days (--force renews now)`;
    // Instances still on the previous pair (a rotation killed before it restarted them) are
    // restarted all the same: that is what converges after the kill.
    if (plan.restart.length) {
      report.skipped += `; ${plan.restart.map((r) => r.name).join(', ')} still served the previous certificate: restarted`;
      await restartOneByOne(plan, report, o, ctx);
    }
    report.ok = report.problems.length === 0;
    return report;
  }
  if (plan.method === 'manual') {
    report.problems.push(
      `certbot is not installed; renew by hand: ${plan.manual_procedure
        .slice(1)
        .map((l) => l.trim())
        .join(' ')}`,
    );
    return report;
  }
  for (const b of plan.backups) await fs.copyFile(b.from, b.to);
  o.onStep?.(`backed up ${plan.backups.map((b) => b.to).join(', ')}`);
  o.journal?.step('backed_up');
  const work = await fs.mkdtemp(path.join(path.dirname(plan.cert), '.ifmesh-certs-'));
  try {
    let newCert: string;
    let newKey: string;
    if (plan.method === 'self-signed-dev') {
      newCert = path.join(work, 'cert.pem');
      newKey = path.join(work, 'key.pem');
      await selfSignedCert(ctx.exec, {
        certFile: newCert,
        keyFile: newKey,
        days: plan.days,
        cn: plan.domain,
      });
    } else {
      const r = await certbotRenew(ctx.exec, {
        domain: plan.domain,
        force: plan.force,
        configDir: plan.certbot_config_dir,
      });
      if (!r.ok) {
        report.problems.push(`certbot renew failed: ${r.output}`);
        return report;
      }
      o.onStep?.(`certbot ${r.args.join(' ')}`);
      newCert = r.fullchain;
      newKey = r.privkey;
    }
    // Checked before anything is replaced: a renewal that yields a bad pair, or one the fleet's
    // clients would refuse (its CA did not issue it, it names none of their hosts), changes nothing.
    const ca = fleetCa(ctx.tls, plan.cert);
    const fresh = await checkCertificate({
      cert: newCert,
      key: newKey,
      warnDays: 0,
      now: ctx.clock.now(),
      trust: ca ? { caFile: ca.caFile, hosts: fleetHosts(o.state, plan.restart) } : undefined,
    });
    if (fresh.problems.length) {
      report.problems.push(...fresh.problems.map((p) => `new certificate: ${p}`));
      return report;
    }
    // certbot exits 0 when it finds nothing due by its own window: then the "new" files are the old.
    // Compared by content, not expiry: a forced renewal within the same second has the same notAfter.
    const unchanged =
      plan.method === 'certbot' &&
      (await fs.readFile(newCert, 'utf8').catch(() => '')) ===
        (await fs.readFile(plan.cert, 'utf8').catch(() => undefined));
    if (unchanged) {
      report.problems.push(
        `certbot did not renew: ${plan.domain} still expires ${fresh.not_after} (its renewal window is shorter than ${plan.threshold_days} days); \`ifmesh certs rotate --force\` forces it`,
      );
      return report;
    }
    // Staged whole beside the old pair (the key first, the certificate last), then installed: a
    // crash anywhere leaves the old pair, a staged pair the next run installs, or the new pair.
    await stageFile(plan.key, newKey, 0o600);
    await stageFile(plan.cert, newCert, 0o644);
    syncDir(plan.cert);
    o.journal?.step('staged');
    await installStaged(plan.cert, plan.key, o.journal);
    report.renewed = true;
    report.new_expiry = fresh.not_after;
    o.onStep?.(`renewed (${plan.method}): expires ${fresh.not_after}`);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  await restartOneByOne(plan, report, o, ctx);
  report.ok = report.problems.length === 0;
  await logEvents(
    o.witness,
    'certs',
    [
      {
        event: 'tls_certificate_rotated',
        metadata: {
          old_expiry: plan.old_expiry,
          new_expiry: report.new_expiry,
          action: plan.method === 'certbot' ? 'automatic_renewal' : 'self_signed_dev',
          cert: plan.cert,
          days_left: plan.days_left,
          threshold_days: plan.threshold_days,
          forced: plan.force,
          restarted: report.restarts.map((r) => r.name),
          status: report.ok ? 'completed' : 'incomplete',
        },
      },
    ],
    ctx,
  );
  return report;
}

async function restartOneByOne(
  plan: CertRotationPlan,
  report: CertRotationReport,
  o: {
    state: StateDir;
    healthTimeoutMs?: number;
    onStep?: (line: string) => void;
    journal?: StepMarks<CertRotationStep> | undefined;
  },
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher' | 'tls'>,
): Promise<void> {
  const launches = new Map(instancesServing(o.state, plan.cert).map((l) => [l.name, l]));
  // With the fleet's CA (--ca, IFMESH_CA_FILE) the health check verifies against it, as the agents
  // do: an instance serving a certificate they would refuse is not healthy, and the rest are left on
  // the old one. Without one (or trusting the rotated certificate itself, whose new content this
  // process's trust has not read) it may be self-signed: the check asks whether it serves.
  const insecure = fleetCa(ctx.tls, plan.cert)
    ? undefined
    : new Agent({ connect: { rejectUnauthorized: false } });
  try {
    for (const target of plan.restart) {
      const l = launches.get(target.name);
      if (!l) {
        report.problems.push(`${target.name} no longer runs; not restarted`);
        continue;
      }
      // Through the fleet's restart path: the same launch spec, so it reads the new files.
      const r = await restartRecorded(
        o.state,
        l.name,
        {
          why: 'restarted by certs rotate (new certificate)',
          evenIfHealthy: true,
          timeoutMs: o.healthTimeoutMs ?? 15_000,
        },
        { ...ctx, dispatcher: insecure ?? ctx.dispatcher },
      );
      if (!r.ok && r.pid === null && /would not stop/.test(r.detail)) {
        report.problems.push(`${l.name} (pid ${l.pid}) would not stop`);
        report.restarts.push({ name: l.name, old_pid: l.pid, new_pid: null, healthy: false });
        return;
      }
      const pid = r.pid;
      const healthy = r.ok;
      report.restarts.push({ name: l.name, old_pid: l.pid, new_pid: pid, healthy });
      o.onStep?.(`${l.name} restarted (pid ${pid}): ${healthy ? 'healthy' : 'NOT healthy'}`);
      if (report.restarts.length === 1) o.journal?.step('instance_restarted');
      if (!healthy) {
        // Going on would risk taking down the last healthy instance too.
        report.problems.push(
          `${l.name} is not healthy after its restart (see ifmesh logs ${l.name}); the rest were left running`,
        );
        return;
      }
    }
  } finally {
    await insecure?.close();
  }
}

/**
 * `certs rotate` as one journaled run (src/ops/procedure.ts): killed midway, `status` names it, and
 * the same command without --force converges: it installs a staged pair and restarts the instances
 * still on the previous certificate (planCertRotation).
 */
export function rotateCertificate(
  plan: CertRotationPlan,
  o: Omit<Parameters<typeof applyCertRotation>[1], 'journal'>,
  ctx: Pick<OpContext, 'exec' | 'clock' | 'signal' | 'dispatcher' | 'env'>,
): Promise<CertRotationReport> {
  const dev = plan.method === 'self-signed-dev' ? ' --self-signed-dev' : '';
  return withProcedure(
    o.state,
    'certs-rotate',
    {
      summary: `certificate rotation of ${plan.cert}`,
      rerun: `ifmesh certs rotate --cert ${plan.cert} --key ${plan.key}${dev}`,
    },
    ctx,
    (journal) => applyCertRotation(plan, { ...o, journal }, ctx),
  );
}
