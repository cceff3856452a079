// Periodic key rotation (the template's ENABLE_SRTP_KEY_ROTATION and SRTP_KEY_ROTATION_INTERVAL_MS).
// Where the timer lives: in cron. `maintenance install-cron` writes a line that runs
// `ifmesh rotate-keys --if-due` every few minutes; each run reads the last rotation from the state
// directory and rotates only once the interval has passed since it. The due time is thus persisted,
// not held by a long-running process: a reboot, a crashed supervisor or a missed cron tick delays a
// rotation by one tick at most, and every rotation (manual, emergency or scheduled) restarts the
// interval. `maintenance daily` reads the same record and tells someone when rotation is overdue or
// its last run did not complete.
import { existsSync, readFileSync } from 'node:fs';
import { writeStateJson } from '../../state/json-file.js';
import type { StateDir } from '../../state/state-dir.js';

/** The last rotation, whoever ran it. */
export interface RotationRecord {
  at: string;
  reason: string;
  incident_id: string | null;
  ok: boolean;
  completed: number;
  total: number;
  pending: string[];
  /** Agents of the current release no instance held: they kept their old keys (absent in older records). */
  not_registered?: string[];
  failed_connections: number | null;
  rotation_ids: (string | null)[];
}

export interface RotationSchedule {
  enabled: boolean;
  interval_ms: number;
  last: RotationRecord | null;
  /** When the next scheduled rotation is due (now, when none ran yet); null when disabled. */
  next_due_at: string | null;
  due: boolean;
  /** Due for longer than OVERDUE_GRACE_MS: the cron line is missing or failing. */
  overdue: boolean;
}

/** How late a rotation may be before daily maintenance calls it overdue (cron ticks, a slow run). */
export const OVERDUE_GRACE_MS = 3_600_000;

export function readRotationRecord(state: StateDir): RotationRecord | null {
  const file = state.keyRotation;
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as RotationRecord;
    return typeof r.at === 'string' && Number.isFinite(Date.parse(r.at)) ? r : null;
  } catch {
    // A torn or hand-edited record: treated as "never rotated", so the next tick rotates and rewrites it.
    return null;
  }
}

/** Written whole and fsynced (src/state/json-file.ts): a crash leaves the previous record or this one. */
export function writeRotationRecord(state: StateDir, r: RotationRecord): void {
  writeStateJson(state.keyRotation, r);
}

export function rotationSchedule(
  state: StateDir,
  o: { enabled: boolean; intervalMs: number },
  now: number,
): RotationSchedule {
  const last = readRotationRecord(state);
  if (!o.enabled)
    return { enabled: false, interval_ms: o.intervalMs, last, next_due_at: null, due: false, overdue: false };
  const dueAt = last ? Date.parse(last.at) + o.intervalMs : now;
  return {
    enabled: true,
    interval_ms: o.intervalMs,
    last,
    next_due_at: new Date(dueAt).toISOString(),
    due: now >= dueAt,
    overdue: last !== null && now > dueAt + OVERDUE_GRACE_MS,
  };
}

/** How often cron asks `rotate-keys --if-due`: a divisor of 60 minutes, at most 15, at most a quarter
 * of the interval, so a rotation is never later than a quarter interval. */
export function cronStepMinutes(intervalMs: number): number {
  const quarter = Math.floor(intervalMs / 60_000 / 4);
  return [15, 10, 5, 3, 2, 1].find((m) => m <= quarter) ?? 1;
}
