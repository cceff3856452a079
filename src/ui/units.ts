// Numbers for people: rounded once, here, for every human rendering that prints them (--json keeps
// the full precision of the data).

/** Milliseconds, one decimal at most: 3.2058670000114944 → "3.2 ms", 100 → "100 ms". */
export function formatMs(ms: number): string {
  return `${Math.round(ms * 10) / 10} ms`;
}

/** A ratio (0-1) as a whole percentage: 0.8333 → "83 %". */
export function formatPercent(ratio: number): string {
  return `${Math.round(ratio * 100)} %`;
}

/** A duration for people, in its largest whole-ish unit: 850 → "850 ms", 12_340 → "12.3 s", 300_000 → "5 min", 3_600_000 → "1 h". */
export function formatDuration(ms: number): string {
  const one = (v: number) => `${Math.round(v * 10) / 10}`;
  if (ms < 1_000) return formatMs(ms);
  if (ms < 60_000) return `${one(ms / 1_000)} s`;
  if (ms < 3_600_000) return `${one(ms / 60_000)} min`;
  return `${one(ms / 3_600_000)} h`;
}
