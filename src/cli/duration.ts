import { UsageError } from '../errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration flag such as 60s, 5m, 500ms or 1h (a bare number is seconds); a usage error otherwise. */
export function durationFlag(value: string, flag: string, maxMs = 7 * 86_400_000): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * UNITS[m[2] ?? 's']! : Number.NaN;
  if (!Number.isFinite(ms) || ms <= 0 || ms > maxMs)
    throw new UsageError(`${flag} ${value} is not a duration`, `e.g. ${flag} 60s, 5m or 500ms`);
  return Math.round(ms);
}
