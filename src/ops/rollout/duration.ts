import { UsageError } from '../../errors.js';

const UNIT: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `500ms`, `30s`, `5m`, `1h` (a bare number is milliseconds) as milliseconds; exit 2 otherwise. */
export function durationMs(v: string, flag: string, minMs = 1): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  const ms = m ? Math.round(Number(m[1]) * UNIT[m[2] ?? 'ms']!) : Number.NaN;
  if (!(ms >= minMs))
    throw new UsageError(`${flag} ${v}: not a duration of at least ${minMs} ms`, 'e.g. 500ms, 30s, 5m or 1h');
  return ms;
}
