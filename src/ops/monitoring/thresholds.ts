// The runbook's "Key Metrics to Track" thresholds: the alert rules and `monitoring check` both read
// them from here, so a threshold changed with --threshold moves the rule and the check together.
import { UsageError } from '../../errors.js';

export interface Thresholds {
  /** Alert when more than this fraction of attempted connections fail (runbook: 5 %). */
  connection_failure_ratio: number;
  /** Alert when more than this fraction of established connections go through TURN (20 %). */
  turn_fallback_ratio: number;
  /** P2P RTT p95 above this many milliseconds (100 ms). */
  rtt_p2p_p95_ms: number;
  /** TURN RTT p50 above this many milliseconds (300 ms). */
  rtt_turn_p50_ms: number;
  /** An agent's resident memory above this many MiB (700 MB). */
  memory_mb: number;
  /** An agent's CPU use above this fraction of one core (80 %). */
  cpu_ratio: number;
  /** Message loss above this fraction (0.5 %). */
  message_loss_ratio: number;
  /** A TLS certificate valid for fewer days than this (7). */
  certificate_days: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  connection_failure_ratio: 0.05,
  turn_fallback_ratio: 0.2,
  rtt_p2p_p95_ms: 100,
  rtt_turn_p50_ms: 300,
  memory_mb: 700,
  cpu_ratio: 0.8,
  message_loss_ratio: 0.005,
  certificate_days: 7,
};

/** Applies `--threshold NAME=VALUE` overrides; an unknown name or a non-number is a usage error. */
export function parseThresholds(overrides: string[] = []): Thresholds {
  const t: Thresholds = { ...DEFAULT_THRESHOLDS };
  for (const o of overrides) {
    const m = /^([a-z0-9_]+)=(.+)$/.exec(o);
    const key = m?.[1] as keyof Thresholds | undefined;
    if (!m || !key || !(key in t))
      throw new UsageError(
        `--threshold ${o}: expected NAME=VALUE with NAME one of ${Object.keys(t).join(', ')}`,
      );
    const v = Number(m[2]);
    if (!Number.isFinite(v) || v < 0)
      throw new UsageError(`--threshold ${o}: ${m[2]} is not a non-negative number`);
    t[key] = v;
  }
  return t;
}
