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
