// Numbers for people: rounded once, here, for every human rendering that prints them (--json keeps
// the full precision of the data). Nothing human-facing interpolates a raw measurement; it goes
// through one of these.

/** Rounds to at most `digits` decimals, without trailing zeros: 3.20 → "3.2", 100.0 → "100". */
function decimals(v: number, digits: number): string {
  const f = 10 ** digits;
  return String(Math.round(v * f) / f);
}

/** Milliseconds, one decimal at most: 3.2058670000114944 → "3.2 ms", 100 → "100 ms"; null → "-". */
export function formatMs(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '-' : `${decimals(ms, 1)} ms`;
}

/**
 * A ratio (0-1) as a percentage, whole where that is honest: 0.8333 → "83 %". A ratio short of 1 is
 * never shown as 100 % (0.9995 → "99.95 %"), nor a ratio above 0 as 0 % (0.0004 → "0.04 %").
 * `minDigits` decimals at least, where a comparison needs them (99.85 % against a 99.9 % target).
 */
export function formatPercent(ratio: number | null | undefined, minDigits = 0): string {
  if (ratio === null || ratio === undefined) return '-';
  const pct = ratio * 100;
  let digits = minDigits;
  const misleading = (d: number) => {
    const shown = Number(decimals(pct, d));
    return (shown >= 100 && ratio < 1) || (shown <= 0 && ratio > 0);
  };
  while (digits < Math.max(3, minDigits) && misleading(digits)) digits++;
  // still rounding to the bound: cut (not round) so it stays on the right side of it
  const text = misleading(digits) ? String(Math.trunc(pct * 1000) / 1000) : decimals(pct, digits);
  return `${text} %`;
}

/** A duration for people, in its largest whole-ish unit: 850 → "850 ms", 12_340 → "12.3 s", 300_000 → "5 min", 3_600_000 → "1 h". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1_000) return formatMs(ms);
  if (ms < 60_000) return `${decimals(ms / 1_000, 1)} s`;
  if (ms < 3_600_000) return `${decimals(ms / 60_000, 1)} min`;
  if (ms < 172_800_000) return `${decimals(ms / 3_600_000, 1)} h`;
  return `${decimals(ms / 86_400_000, 1)} d`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** A size in bytes: 512 → "512 B", 1_536 → "1.5 KiB", 734_003_200 → "700 MiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '-';
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${decimals(v, i === 0 ? 0 : 1)} ${BYTE_UNITS[i]}`;
}

/** A plain number, at most `digits` decimals: 0.12345 → "0.12"; null → "-". */
export function formatNumber(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined ? '-' : decimals(v, digits);
}

/** A measured value with the unit a report gives it ("ms", "ratio", "MiB", "count", …). */
export function formatQuantity(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined) return '-';
  switch (unit) {
    case 'ms':
      return formatMs(v);
    case 's':
      return formatDuration(v * 1000);
    case 'ratio':
      return formatPercent(v);
    case 'bytes':
      return formatBytes(v);
    case 'MiB':
    case 'MB':
      return `${decimals(v, 1)} ${unit}`;
    case 'count':
      return formatNumber(v, 0);
    case 'days':
      // Whole days left, as `certs check` counts them: 29.6 is "29 days" (rounded, it read 30 there).
      return `${formatNumber(Math.floor(v), 0)} days`;
    default:
      return `${formatNumber(v)} ${unit}`;
  }
}
