// The one restart path (STYLE rule 14): start a process from a spec, or restart a recorded one from
// its launch spec, and wait until it answers as its role should, or has exited. up, deploy,
// incident p1, failover signaling, certs rotate and the supervisor all go through here, so an
// instance restarted by any of them comes back with the same command, env file, cwd and flags.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isUnverifiedCertificate } from '../../clients/http.js';
import { IfmeshError } from '../../errors.js';
import { applyNginx, readNginxPlan } from '../../exec/nginx.js';
import { isAlive } from '../../exec/pid.js';
import { acquireLock, type HeldLock } from '../../state/lock.js';
import { type LaunchSpec, type ProcessRecord, readProcess, scanProcesses } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { systemExec } from '../../util/exec.js';
import { waitFor } from '../../util/wait.js';
import type { OpContext } from '../shared.js';
import { answers } from './health.js';
import { type ProcessSpec, Supervisor } from './supervisor.js';

export interface StartResult {
  name: string;
  ok: boolean;
  pid: number | null;
  /** Found running and answering: nothing was started. */
  already_running: boolean;
  /** `unlessStopping`: another command stops or replaces it on purpose; nothing was done. */
  skipped?: true;
  detail: string;
}

type Ctx = Pick<OpContext, 'clock' | 'signal' | 'dispatcher'> & Partial<Pick<OpContext, 'exec'>>;

export const DEFAULT_START_TIMEOUT_MS = 20_000;

/**
 * Whether `rec` answers; `unverified` says why not when it answered over TLS with a certificate this
 * command cannot verify (no --ca, expired, another name): it runs, and restarting it changes nothing.
 */
async function probe(rec: ProcessRecord, ctx: Ctx): Promise<{ ok: boolean; unverified?: string }> {
  try {
    return { ok: await answers(rec, ctx.dispatcher, { throwUntrusted: true }) };
  } catch (err) {
    if (!isUnverifiedCertificate(err)) throw err;
    return {
      ok: false,
      unverified: `it answers with a certificate this command cannot verify (${err.message}): ${err.hint ?? ''}`,
    };
  }
}

/** Waits until `name` answers (ok), answers unverified, or its process has exited (not ok). */
async function untilAnswering(
  sup: Supervisor,
  name: string,
  ctx: Ctx,
  timeoutMs: number,
): Promise<{ ok: boolean; unverified?: string }> {
  let exited = false;
  let unverified: string | undefined;
  const ok = await waitFor(
    async () => {
      const rec = readProcess(sup.state, name);
      if (sup.running(name) === undefined || !rec) {
        exited = true;
        return true;
      }
      const p = await probe(rec, ctx);
      unverified = p.unverified;
      return p.ok || unverified !== undefined;
    },
    { timeoutMs, intervalMs: 100 },
    ctx.clock,
    ctx.signal,
  );
  return unverified !== undefined ? { ok: false, unverified } : { ok: ok && !exited };
}

function failure(sup: Supervisor, name: string): string {
  const last = sup.tail(name, 15).trim();
  return `did not become healthy${last ? `; last log lines:\n${last}` : ''}\n(see ${sup.logFile(name)})`;
}

/**
 * Starts `spec` through `sup` unless it already runs and answers, and waits until it answers; a
 * process that does not is stopped again, so nothing half-started stays recorded as running.
 */
export async function startAndWait(
  sup: Supervisor,
  spec: ProcessSpec,
  ctx: Ctx,
  timeoutMs = DEFAULT_START_TIMEOUT_MS,
): Promise<StartResult> {
  const running = sup.running(spec.name);
  const rec = readProcess(sup.state, spec.name);
  if (running !== undefined && rec && (await probe(rec, ctx)).ok)
    return { name: spec.name, ok: true, pid: running, already_running: true, detail: 'already running' };
  await sup.stop(spec.name, 2_000);
  const pid = sup.start(spec);
  const up = await untilAnswering(sup, spec.name, ctx, timeoutMs);
  if (up.ok)
    return { name: spec.name, ok: true, pid, already_running: false, detail: `started (pid ${pid})` };
  const detail = up.unverified
    ? `stopped: its health could not be confirmed, ${up.unverified}`
    : failure(sup, spec.name);
  await sup.stop(spec.name, 2_000);
  return { name: spec.name, ok: false, pid: null, already_running: false, detail };
}

/**
 * Runs `fn` (a stop, or a stop and a start on another spec) holding `name`'s restart lock, so the
 * supervisor, which restarts under the same lock, never starts the old spec of a process being
 * replaced or removed (two processes for one name, one of them unrecorded).
 */
export async function withRestartLock<T>(
  state: StateDir,
  name: string,
  why: string,
  ctx: { clock: Ctx['clock']; signal?: Ctx['signal'] },
  fn: () => Promise<T>,
): Promise<T> {
  const lock = await restartLock(state, name, why, ctx);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** The per-process restart lock: the supervisor and a procedure never restart one process at once. */
async function restartLock(
  state: StateDir,
  name: string,
  why: string,
  ctx: { clock: Ctx['clock']; signal?: Ctx['signal'] },
): Promise<HeldLock> {
  let lock: HeldLock | undefined;
  await waitFor(
    async () => {
      try {
        lock = await acquireLock(state, `restart-${name}`, why, ctx.clock);
        return true;
      } catch (err) {
        if (err instanceof IfmeshError && err.code === 'locked') return false;
        throw err;
      }
    },
    { timeoutMs: DEFAULT_START_TIMEOUT_MS * 2, intervalMs: 50 },
    ctx.clock,
    ctx.signal,
  );
  if (!lock) throw new IfmeshError('locked', `${name} is being restarted by someone else`, 1, 'try again');
  return lock;
}

export interface RestartOptions {
  /** Why, for its log: "restarted by incident p1 (process gone)". */
  why: string;
  /** Restart even a process that runs and answers (certs rotate: to load a new certificate). */
  evenIfHealthy?: boolean;
  timeoutMs?: number;
  /**
   * Starts it from this spec instead of the recorded one, and records it (a release's rolling
   * restart: the same instance on another release's entry script).
   */
  launch?: LaunchSpec;
  /**
   * The supervisor's: leave it alone when, read again under the restart lock, another command stops
   * it on purpose (`stopping`) or already removed its record (a canary moving an agent between
   * releases stops it, then starts it on the other spec): restarting the old spec then would leave
   * two processes for one name.
   */
  unlessStopping?: boolean;
}

/**
 * Restarts recorded process `name` from its launch spec, under its original owner, and waits until
 * it answers. One that runs and answers is left alone unless `evenIfHealthy`.
 */
export async function restartRecorded(
  state: StateDir,
  name: string,
  o: RestartOptions,
  ctx: Ctx,
): Promise<StartResult> {
  const lock = await restartLock(state, name, o.why, ctx);
  try {
    const rec = readProcess(state, name);
    if (o.unlessStopping && (!rec || rec.stopping))
      return {
        name,
        ok: false,
        pid: null,
        already_running: false,
        skipped: true,
        detail: rec ? 'being stopped on purpose by another command' : 'its record was removed meanwhile',
      };
    if (!rec)
      return { name, ok: false, pid: null, already_running: false, detail: 'no such process is recorded' };
    const sup = new Supervisor(state, { clock: ctx.clock, owner: rec.owner });
    const running = sup.running(name);
    if (!o.evenIfHealthy && running !== undefined) {
      const p = await probe(rec, ctx);
      if (p.ok)
        return { name, ok: true, pid: running, already_running: true, detail: 'already running and healthy' };
      // A restart would not change the certificate it serves: left running, with the fix (--ca FILE,
      // renew it). The callers that get here saw it gone (the supervisor, incident p1): another
      // restarted it meanwhile.
      if (p.unverified)
        return {
          name,
          ok: false,
          pid: running,
          already_running: false,
          detail: `already restarted by another (pid ${running}), but ${p.unverified}`,
        };
    }
    // nginx daemonizes, so it is adopted without a launch spec: started again from the plan its
    // configuration was written from.
    if (!rec.spec && rec.role === 'nginx') return await restartNginx(state, sup, rec, o.why, ctx);
    if (!rec.spec)
      return {
        name,
        ok: false,
        pid: null,
        already_running: false,
        detail:
          'its record has no launch spec (started by an older ifmesh): run `ifmesh up` or `ifmesh deploy` again',
      };
    // A unit is restarted by systemctl restart (restartFromRecord); a local process is stopped first.
    if (running !== undefined && rec.supervisor !== 'systemd') await sup.stop(name, 5_000);
    const recorded: ProcessRecord = readProcess(state, name) ?? rec;
    const fresh = o.launch ? { ...recorded, spec: o.launch } : recorded;
    const pid = sup.restartFromRecord(fresh, o.why);
    const up = await untilAnswering(sup, name, ctx, o.timeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    if (up.ok || up.unverified) {
      // It runs either way: nginx routes to it at once (it counted the instance failed for 30 s).
      // Not when its certificate is not trusted: a reload makes nginx re-read the same certificate
      // file, and the front door would serve the pair its clients refuse (a bad pair copied into
      // place, then an instance crash: every agent lost the front door in the drill).
      const front = rec.role === 'signaling' && !up.unverified ? reloadFrontDoor(state) : [];
      const reloaded = front.length
        ? `; nginx (pid ${front.join(', ')}) reloaded (SIGHUP) to route to it at once`
        : '';
      if (up.unverified)
        return {
          name,
          ok: false,
          pid,
          already_running: false,
          detail: `restarted (pid ${pid})${reloaded}, but ${up.unverified}`,
        };
      return { name, ok: true, pid, already_running: false, detail: `restarted (pid ${pid})${reloaded}` };
    }
    return { name, ok: false, pid: null, already_running: false, detail: failure(sup, name) };
  } finally {
    await lock.release();
  }
}

/**
 * Starts a dead nginx master again from `<state>/nginx/nginx.plan.json` (its configuration's plan,
 * kept by every write of it), re-adopts the new master and waits until it answers as the front door.
 */
async function restartNginx(
  state: StateDir,
  sup: Supervisor,
  rec: ProcessRecord,
  why: string,
  ctx: Ctx,
): Promise<StartResult> {
  const fail = (detail: string): StartResult => ({
    name: rec.name,
    ok: false,
    pid: null,
    already_running: false,
    detail,
  });
  const plan = readNginxPlan(state.nginx);
  if (!plan)
    return fail(
      `no ${path.join(state.nginx, 'nginx.plan.json')} to start it from: run \`ifmesh deploy\` again`,
    );
  // A master killed with SIGKILL leaves its workers on the port; the stop takes them with it.
  await sup.stop(rec.name, 2_000);
  let pid: number;
  try {
    pid = await applyNginx(plan, false, { exec: ctx.exec ?? systemExec, clock: ctx.clock });
  } catch (err) {
    if (!(err instanceof IfmeshError)) throw err;
    return fail(`${err.message}${err.hint ? ` (${err.hint})` : ''}`);
  }
  sup.recordRestart(rec, pid);
  // Its error log is the fleet's logs/<name>.log: the reason goes beside nginx's own lines.
  sup.logRestart(rec.name, why);
  const up = await untilAnswering(sup, rec.name, ctx, DEFAULT_START_TIMEOUT_MS);
  if (up.ok)
    return { name: rec.name, ok: true, pid, already_running: false, detail: `restarted (pid ${pid})` };
  return fail(up.unverified ? `restarted (pid ${pid}), but ${up.unverified}` : failure(sup, rec.name));
}

/**
 * nginx in front of the instances marks an upstream failed after 3 errors for 30 s (the runbook's
 * max_fails=3 fail_timeout=30s): once every instance was down, it answers "no live upstreams" for
 * that long after they are back, and agents behind it stay away (measured: over a minute). A reload
 * (SIGHUP) starts workers with fresh upstream state; connections already open stay on the old
 * workers. Returns the pids of the nginx masters reloaded.
 */
function reloadFrontDoor(state: StateDir): number[] {
  // Best effort: the instance is back either way, and a record that cannot be read (or a pid now
  // someone else's: SIGHUP ends most programs) must not turn a good restart into a failure.
  // What reads: one torn record (another process's) must not keep the front door from reloading.
  let records: ProcessRecord[];
  try {
    records = scanProcesses(state).records;
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const r of records) {
    if (r.role !== 'nginx' || !(r.pid > 0) || !isAlive(r.pid) || !isNginx(r.pid)) continue;
    try {
      process.kill(r.pid, 'SIGHUP');
      out.push(r.pid);
    } catch {
      // gone in between: nothing to reload
    }
  }
  return out;
}

/** Whether `pid` is still an nginx master (its pid may have been reused since it was recorded). */
function isNginx(pid: number): boolean {
  try {
    return /^nginx: master process/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
  } catch {
    return false;
  }
}
