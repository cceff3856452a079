// The runbook's thresholds, one table: its "Key Metrics to Track" (the alert rules, `monitoring
// check`, `top`) and its "Rollback Trigger Conditions" (canary analysis, `monitor`), so a threshold
// changed with --threshold moves every rule, check and gate that reads it together.
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
  /** Roll back when error events exceed this fraction of all events (Rollback Trigger Conditions: 5 %). */
  error_rate: number;
  /**
   * "Memory leak detected" (the runbook gives no number): an agent's RSS growing by more than this many
   * MiB across one window of `memory_usage_update` events.
   */
  memory_growth_mb: number;
  /** DTLS or signature validation failures tolerated before a rollback (runbook: none). */
  validation_failures: number;
  /** Failover validation: connected share of reported connections (the failover guide's 80 %). */
  failover_connection_success: number;
  /** Signed message delivery a verification needs (message loss < 0.1 %). */
  delivery_ratio: number;
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
  error_rate: 0.05,
  memory_growth_mb: 100,
  validation_failures: 0,
  failover_connection_success: 0.8,
  delivery_ratio: 0.999,
};

/** The lowest connection success rate before a rollback (Rollback Trigger Conditions: 95 %). */
export function minConnectionSuccess(t: Thresholds): number {
  // Rounded so that 1 - 0.05 reads 0.95 in a gate's threshold, not 0.9500000000000001.
  return Math.round((1 - t.connection_failure_ratio) * 1e6) / 1e6;
}

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
    // A ratio above 1 never trips (error_rate=2 would pass a canary whatever failed): likely a
    // percentage typed as such.
    // (Not cpu_ratio: a process on several cores may use more than one.)
    const ratio = (key.endsWith('_ratio') && key !== 'cpu_ratio') || key === 'error_rate';
    if ((ratio || key === 'failover_connection_success' || key === 'delivery_ratio') && v > 1)
      throw new UsageError(
        `--threshold ${o}: ${key} is a ratio from 0 to 1`,
        `for ${m[2]} %, write ${key}=${v / 100}`,
      );
    t[key] = v;
  }
  return t;
}
