// The one duration grammar of ifmesh: every duration flag (src/cli/options.ts durationFlag), the
// Prometheus durations monitoring export writes, and the witness's relative times (`--since 1h`,
// POST /api/query's "-1h") read durations here, so "5m" means the same thing everywhere.

export const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
export type DurationUnit = keyof typeof UNIT_MS;

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;

/**
 * `500ms`, `30s`, `5m`, `1h`, `7d`, `2w`, a decimal (`1.5s`) or a sum (`1h30m`) as whole
 * milliseconds. A bare number counts in `bare` (milliseconds unless said otherwise), or is refused
 * when `bare` is null. undefined when `text` is none of these.
 */
export function parseDuration(text: string, bare: DurationUnit | null = 'ms'): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return bare ? Math.round(Number(t) * UNIT_MS[bare]) : undefined;
  if (t === '') return undefined;
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < t.length) {
    const m = PART.exec(t);
    if (!m) return undefined;
    ms += Number(m[1]) * UNIT_MS[m[2] as DurationUnit];
  }
  const rounded = Math.round(ms);
  return Number.isSafeInteger(rounded) ? rounded : undefined;
}

/** Whole milliseconds in the form Prometheus and Alertmanager read: 90000 → "1m30s", 500 → "500ms". */
export function prometheusDuration(ms: number): string {
  let rest = Math.round(ms);
  let out = '';
  for (const unit of ['w', 'd', 'h', 'm', 's', 'ms'] as const) {
    const n = Math.floor(rest / UNIT_MS[unit]);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * UNIT_MS[unit];
  }
  return out || '0s';
}
