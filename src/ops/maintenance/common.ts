// What daily and weekly maintenance share: the lock, where the mesh is, UTC dates, and writing a
// report whole (tmp + rename), so cron never leaves half a JSON file behind.
import { ExitCode, IfmeshError } from '../../errors.js';
import { writeStateJson } from '../../state/json-file.js';
import { acquireLock, type HeldLock } from '../../state/lock.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Clock } from '../../util/clock.js';
import type { OpContext } from '../shared.js';
import { runWitnessQuery } from '../witness/query.js';

export interface MaintenanceTargets {
  state: StateDir;
  /** http(s) base URLs of the signaling instances. */
  signaling: string[];
  witness:
    | {
        url: string;
        apiKey: string;
        /** The witness's admin key (cleanup); the write key is tried when there is none. */
        adminKey?: string | undefined;
        queryToken?: string | undefined;
      }
    | undefined;
}

/** A second run while one holds the lock exits at once with 75 (EX_TEMPFAIL), naming the holder.
 * `name` is the lock's: `maintenance` for daily and weekly, `key-rotation` for the scheduled rotation
 * (its own, so midnight's daily run never makes midnight's rotation tick give up). */
export async function maintenanceLock(
  state: StateDir,
  purpose: string,
  clock: Clock,
  name = 'maintenance',
): Promise<HeldLock> {
  try {
    return await acquireLock(state, name, purpose, clock);
  } catch (err) {
    if (err instanceof IfmeshError && err.code === 'locked')
      throw new IfmeshError('locked', err.message, ExitCode.locked, err.hint);
    throw err;
  }
}

/** Runs `fn` holding the maintenance lock (see maintenanceLock), releasing it however `fn` ends. */
export async function withMaintenanceLock<T>(
  state: StateDir,
  purpose: string,
  clock: Clock,
  fn: () => Promise<T>,
  name = 'maintenance',
): Promise<T> {
  const lock = await maintenanceLock(state, purpose, clock, name);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/** A report written whole and fsynced (src/state/json-file.ts): a crash leaves the old or the new. */
export function writeJsonWhole(file: string, doc: unknown): void {
  writeStateJson(file, doc);
}

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** How many witness events whose name matches `regex` were logged from `from` (e.g. '-24h') until
 * now, counting at most 10,000. */
export async function countWitnessEvents(
  witness: NonNullable<MaintenanceTargets['witness']>,
  ctx: Pick<OpContext, 'dispatcher'>,
  regex: string,
  from: string,
): Promise<number> {
  const q = await runWitnessQuery({
    url: witness.url,
    token: witness.queryToken,
    dispatcher: ctx.dispatcher,
    body: { query: { event: { regex } }, time_range: { from, to: 'now' }, limit: 10_000 },
  });
  return q.results.length;
}
