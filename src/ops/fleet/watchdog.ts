// The state's supervisor (`ifmesh supervise`): keeps the services `up` and `deploy` started running.
// A supervised process whose pid is gone is restarted from its launch spec through the fleet's one
// restart path, at once and then with backoff; one that keeps dying is left alone after `maxTries`
// restarts within `windowMs` and marked as crash-looping in its record, which `status` shows. Each
// restart is counted in the record, written to the process's log and logged to the witness.
import { IfmeshError } from '../../errors.js';
import { isAlive } from '../../exec/pid.js';
import { type ProcessRecord, readProcess, scanProcesses, updateProcess } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import type { OpContext } from '../shared.js';
import { restartRecorded, type StartResult, withRestartLock } from './restart.js';

export interface WatchdogEvent {
  event: 'service_restarted' | 'service_restart_failed' | 'service_crash_loop' | 'service_record_unreadable';
  name: string;
  role: string;
  restarts: number;
  detail: string;
}

export interface WatchdogOptions {
  state: StateDir;
  /** Restarts allowed within `windowMs` before the process is declared crash-looping. */
  maxTries?: number;
  windowMs?: number;
  /** Waits before each successive restart of one process (the last one repeats). */
  backoffMs?: number[];
  pollMs?: number;
  /** Every restart, failure and crash loop, for the log and the witness. */
  onEvent?: (e: WatchdogEvent) => void;
}

export const WATCHDOG_DEFAULTS = {
  maxTries: 5,
  windowMs: 60_000,
  backoffMs: [0, 1_000, 2_000, 4_000, 8_000],
  pollMs: 250,
};

type Ctx = Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>;

interface Track {
  /** When each restart of the window was made. */
  tries: number[];
  /** No restart before this time. */
  notBefore: number;
}

// A systemd unit is systemd's to restart (Restart=on-failure), never this watchdog's. nginx, adopted
// without a launch spec, is started again from its configuration's plan (restart.ts).
const watched = (r: ProcessRecord) =>
  r.supervised === true &&
  (r.spec !== undefined || r.role === 'nginx') &&
  !r.stopping &&
  !r.crash_loop &&
  r.supervisor !== 'systemd';

/** The unreadable records a watchdog (its `tracks`) has named already. */
const namedUnreadable = new WeakMap<Map<string, Track>, Set<string>>();

/** One pass: restarts what is due. Returns what it did (for tests and the loop's log). */
export async function watchdogPass(
  o: WatchdogOptions,
  tracks: Map<string, Track>,
  ctx: Ctx,
): Promise<{ name: string; result?: StartResult; crash_loop?: boolean }[]> {
  const cfg = { ...WATCHDOG_DEFAULTS, ...o };
  // A record that no longer parses is named once (until it reads again) and left alone: the others
  // are still watched; its process, if it runs, is not this supervisor's to restart.
  const { records, unreadable } = scanProcesses(o.state);
  const named = namedUnreadable.get(tracks) ?? new Set<string>();
  namedUnreadable.set(tracks, named);
  for (const u of unreadable)
    if (!named.has(u.name))
      o.onEvent?.({
        event: 'service_record_unreadable',
        name: u.name,
        role: 'unknown',
        restarts: 0,
        detail: `${u.error}: not watched until it is fixed; ${u.fix}`,
      });
  named.clear();
  for (const u of unreadable) named.add(u.name);
  const done: { name: string; result?: StartResult; crash_loop?: boolean }[] = [];
  for (const rec of records.filter(watched)) {
    if (rec.pid > 0 && isAlive(rec.pid)) continue;
    const now = ctx.clock.now();
    const t = tracks.get(rec.name) ?? { tries: [], notBefore: now };
    t.tries = t.tries.filter((at) => now - at < cfg.windowMs);
    tracks.set(rec.name, t);
    if (now < t.notBefore) continue;
    if (t.tries.length >= cfg.maxTries) {
      // Only on the record this pass read: a canary or deploy may have replaced it meanwhile with a
      // fresh process, which must not be marked (and so never watched again).
      const marked = await withRestartLock(o.state, rec.name, 'marking a crash loop', ctx, async () => {
        const current = readProcess(o.state, rec.name);
        if (current?.pid !== rec.pid || current.stopping) return false;
        updateProcess(o.state, rec.name, {
          crash_loop: {
            since: new Date(now).toISOString(),
            tries: t.tries.length,
            last_exit: 'process gone',
          },
        });
        return true;
      }).catch((err: unknown) => {
        // Held past the wait by whoever replaces it: that one decides; looked at again next pass.
        if (err instanceof IfmeshError) return false;
        throw err;
      });
      if (!marked) {
        tracks.delete(rec.name);
        continue;
      }
      o.onEvent?.({
        event: 'service_crash_loop',
        name: rec.name,
        role: rec.role,
        restarts: rec.restarts ?? 0,
        detail: `${t.tries.length} restarts within ${Math.round(cfg.windowMs / 1000)} s; no more tries (restart it by hand)`,
      });
      done.push({ name: rec.name, crash_loop: true });
      continue;
    }
    t.tries.push(now);
    // A restart that fails the way an operation can (its lock held past the wait, a state file it
    // cannot write) is this restart's failure: the supervisor goes on watching the others. Being
    // stopped, or a bug, still ends the pass.
    const result = await restartRecorded(
      o.state,
      rec.name,
      { why: `restarted by the supervisor: process ${rec.pid} was gone`, unlessStopping: true },
      ctx,
    ).catch((err: unknown): StartResult => {
      const e = err as NodeJS.ErrnoException;
      if (ctx.signal?.aborted || !(err instanceof IfmeshError || typeof e?.code === 'string')) throw err;
      return {
        name: rec.name,
        ok: false,
        pid: null,
        already_running: false,
        detail: `${e.message} (${e.code})${err instanceof IfmeshError && err.hint ? `; ${err.hint}` : ''}`,
      };
    });
    // Another command stopped, moved or already restarted it between this pass's read and the lock:
    // not a crash, so not a try and nothing to report.
    if (result.skipped || result.already_running) {
      t.tries.pop();
      continue;
    }
    t.notBefore = ctx.clock.now() + cfg.backoffMs[Math.min(t.tries.length, cfg.backoffMs.length - 1)]!;
    o.onEvent?.({
      event: result.ok ? 'service_restarted' : 'service_restart_failed',
      name: rec.name,
      role: rec.role,
      restarts: (rec.restarts ?? 0) + 1,
      detail: result.detail,
    });
    done.push({ name: rec.name, result });
  }
  return done;
}

/** Runs passes every `pollMs` until `ctx.signal` aborts. */
export async function runWatchdog(o: WatchdogOptions, ctx: Ctx): Promise<void> {
  const tracks = new Map<string, Track>();
  const pollMs = o.pollMs ?? WATCHDOG_DEFAULTS.pollMs;
  while (!ctx.signal?.aborted) {
    await watchdogPass(o, tracks, ctx);
    try {
      await ctx.clock.sleep(pollMs, ctx.signal);
    } catch {
      break;
    }
  }
}
