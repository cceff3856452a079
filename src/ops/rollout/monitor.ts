// automated-rollback-monitor.sh as a typed procedure: every interval, over a sliding window of the
// witness log for one deployment, the runbook's two thresholds (error events over all events > 5 %;
// connected over attempted connection_state_changed < 95 %) and its other triggers (memory trend from
// memory_usage_update, DTLS or signature validation failures). A breach rolls back to the previous
// release. Unlike the runbook, a window with no connection attempts is not a 0 % success rate.
import type { MeshConfig } from '../../config/load.js';
import type { Progress } from '../../ui/progress.js';
import { listReleases } from '../deploy/releases.js';
import type { OpContext } from '../shared.js';
import { runWitnessQuery } from '../witness/query.js';
import { isErrorEvent } from './analysis.js';
import { type RollbackReport, rollback } from './rollback.js';

export interface MonitorThresholds {
  error_rate: number;
  connection_success: number;
  /** An agent's RSS growing by more than this many MiB across the window. */
  memory_growth_mb: number;
}

export const MONITOR_DEFAULTS: MonitorThresholds = {
  error_rate: 0.05,
  connection_success: 0.95,
  memory_growth_mb: 100,
};

export interface MonitorCheck {
  at: string;
  elapsed_ms: number;
  events: number;
  error_rate: number | null;
  connection_success: number | null;
  memory_growth_mb: number | null;
  dtls_failures: number;
  signature_failures: number;
  /** The first trigger that fired, or null. */
  breach: { trigger: string; value: number; threshold: string } | null;
}

/** Pure: one check over the window's events. */
export function evaluateWindow(
  events: Record<string, unknown>[],
  t: MonitorThresholds,
): Omit<MonitorCheck, 'at' | 'elapsed_ms'> {
  const errors = events.filter(isErrorEvent).length;
  const error_rate = events.length ? errors / events.length : null;
  const pairs = new Map<string, boolean>();
  for (const e of events.filter((x) => x.event === 'connection_state_changed')) {
    const key = [e.agent_id, e.peer_id].map(String).sort().join('|');
    const up = (e.metadata as { state?: string } | undefined)?.state === 'connected';
    pairs.set(key, (pairs.get(key) ?? false) || up);
  }
  const connection_success = pairs.size ? [...pairs.values()].filter(Boolean).length / pairs.size : null;
  const mem = new Map<string, number[]>();
  for (const e of events.filter((x) => x.event === 'memory_usage_update')) {
    const b = Number((e.metadata as { memory_bytes?: number } | undefined)?.memory_bytes);
    if (Number.isFinite(b))
      mem.set(String(e.agent_id), [...(mem.get(String(e.agent_id)) ?? []), b / 2 ** 20]);
  }
  const growths = [...mem.values()].filter((xs) => xs.length >= 2).map((xs) => xs.at(-1)! - xs[0]!);
  const memory_growth_mb = growths.length ? Math.round(Math.max(...growths) * 10) / 10 : null;
  const dtls_failures = events.filter((e) => e.event === 'dtls_validation_failed').length;
  const signature_failures = events.filter((e) => e.event === 'signature_verification_failed').length;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  const breach =
    error_rate !== null && error_rate > t.error_rate
      ? { trigger: 'error_rate', value: r(error_rate), threshold: `> ${t.error_rate}` }
      : connection_success !== null && connection_success < t.connection_success
        ? {
            trigger: 'connection_success',
            value: r(connection_success),
            threshold: `< ${t.connection_success}`,
          }
        : memory_growth_mb !== null && memory_growth_mb > t.memory_growth_mb
          ? { trigger: 'memory_growth_mb', value: memory_growth_mb, threshold: `> ${t.memory_growth_mb}` }
          : dtls_failures > 0
            ? { trigger: 'dtls_failures', value: dtls_failures, threshold: '> 0' }
            : signature_failures > 0
              ? { trigger: 'signature_failures', value: signature_failures, threshold: '> 0' }
              : null;
  return {
    events: events.length,
    error_rate: error_rate === null ? null : r(error_rate),
    connection_success: connection_success === null ? null : r(connection_success),
    memory_growth_mb,
    dtls_failures,
    signature_failures,
    breach,
  };
}

export interface MonitorOptions {
  deploymentId: string;
  durationMs: number;
  intervalMs: number;
  windowMs: number;
  thresholds: MonitorThresholds;
  /** false: report a breach and exit 1 without rolling back. */
  rollback: boolean;
  stateDir: string;
  config: MeshConfig;
  progress: Progress;
  onCheck: (c: MonitorCheck) => void;
}

export interface MonitorReport {
  deployment_id: string;
  checks: number;
  breach: MonitorCheck['breach'];
  rollback: RollbackReport | null;
}

export async function monitor(o: MonitorOptions, ctx: OpContext): Promise<MonitorReport> {
  const start = ctx.clock.now();
  // The deployment's own events, plus its agents' (agents do not tag events with a deployment id).
  const release = (await listReleases(o.stateDir)).find((r) => r.deployment_id === o.deploymentId);
  const agents = release?.agents ?? [];
  let checks = 0;
  for (;;) {
    const from = new Date(ctx.clock.now() - o.windowMs).toISOString();
    const q = (query: Record<string, unknown>) =>
      runWitnessQuery({
        url: o.config.witnessUrl,
        token: ctx.env.WITNESS_QUERY_TOKEN,
        dispatcher: ctx.dispatcher,
        timeoutMs: 5_000,
        body: { query, time_range: { from, to: 'now' }, limit: 10_000 },
      }).then((a) => a.results);
    const [tagged, own] = await Promise.all([
      q({ deployment_id: o.deploymentId }),
      agents.length ? q({ agent_id: { $in: agents } }) : Promise.resolve([]),
    ]);
    const byId = new Map([...tagged, ...own].map((e) => [String(e.id), e]));
    const now = ctx.clock.now();
    const c: MonitorCheck = {
      at: new Date(now).toISOString(),
      elapsed_ms: now - start,
      ...evaluateWindow([...byId.values()], o.thresholds),
    };
    checks += 1;
    o.onCheck(c);
    if (c.breach) {
      const reason = `monitor: ${c.breach.trigger} = ${c.breach.value} (${c.breach.threshold}) for ${o.deploymentId}`;
      const rb = o.rollback
        ? await rollback(
            { stateDir: o.stateDir, target: undefined, reason, config: o.config, progress: o.progress },
            false,
            ctx,
          )
        : null;
      return { deployment_id: o.deploymentId, checks, breach: c.breach, rollback: rb };
    }
    if (ctx.clock.now() - start + o.intervalMs > o.durationMs) break;
    await ctx.clock.sleep(o.intervalMs, ctx.signal);
  }
  return { deployment_id: o.deploymentId, checks, breach: null, rollback: null };
}
