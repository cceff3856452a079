// automated-rollback-monitor.sh as a typed procedure: every interval, over a sliding window of the
// witness log for one deployment, the runbook's rollback triggers (error events over all events > 5 %;
// connected over attempted connection_state_changed pairs < 95 %; a memory leak from
// memory_usage_update; DTLS or signature validation failures), each a measurement with the canary's
// rules (measurement.ts): a failed check past --failure-limit, or a gate unmeasurable
// --consecutive-error-limit checks in a row (the witness down), rolls back to the previous release;
// a run in which a required gate never measured ends inconclusive (exit 1, nothing rolled back).
// Unlike the runbook, a window with no connection attempts is not a 0 % success rate.
import type { MeshConfig } from '../../config/load.js';
import { UsageError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import { listReleases } from '../deploy/releases.js';
import { minConnectionSuccess, type Thresholds } from '../monitoring/thresholds.js';
import type { OpContext } from '../shared.js';
import { runWitnessQuery } from '../witness/query.js';
import { isErrorEvent, type Sourced, unanswered } from './analysis.js';
import {
  type AnalysisRules,
  type CheckRecord,
  checkRecord,
  freshProgress,
  type Measurement,
  recordCheck,
  windowVerdict,
} from './measurement.js';
import { type RollbackReport, rollback } from './rollback.js';

export const MONITOR_GATES = [
  'error_rate',
  'connection_success',
  'memory_growth_mb',
  'dtls_failures',
  'signature_failures',
] as const;
/** Agents report memory every 30 s: a short run may see no trend, so memory may end unmeasured. */
export const MONITOR_REQUIRED: string[] = MONITOR_GATES.filter((g) => g !== 'memory_growth_mb');

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Pure: every trigger over the window's events (or the witness's failure to give them). */
export function evaluateWindow(
  events: Sourced<{ events: Record<string, unknown>[] }>,
  t: Thresholds,
): Measurement[] {
  const thresholds: Record<(typeof MONITOR_GATES)[number], string> = {
    error_rate: `<= ${t.error_rate}`,
    connection_success: `>= ${minConnectionSuccess(t)}`,
    memory_growth_mb: `<= ${t.memory_growth_mb}`,
    dtls_failures: `<= ${t.validation_failures}`,
    signature_failures: `<= ${t.validation_failures}`,
  };
  if (unanswered(events))
    return MONITOR_GATES.map((gate) => ({
      gate,
      status: 'error',
      value: null,
      threshold: thresholds[gate],
      detail: events.error,
    }));
  const ev = events.events;
  const none = (detail: string) => ({ status: 'inconclusive' as const, value: null, detail });
  const judge = (bad: boolean, value: number) => ({
    status: bad ? ('failed' as const) : ('ok' as const),
    value,
  });

  const errors = ev.filter(isErrorEvent).length;
  const pairs = new Map<string, boolean>();
  for (const e of ev.filter((x) => x.event === 'connection_state_changed')) {
    const key = [e.agent_id, e.peer_id].map(String).sort().join('|');
    const up = (e.metadata as { state?: string } | undefined)?.state === 'connected';
    pairs.set(key, (pairs.get(key) ?? false) || up);
  }
  const success = pairs.size ? [...pairs.values()].filter(Boolean).length / pairs.size : null;
  const mem = new Map<string, number[]>();
  for (const e of ev.filter((x) => x.event === 'memory_usage_update')) {
    const b = Number((e.metadata as { memory_bytes?: number } | undefined)?.memory_bytes);
    if (Number.isFinite(b))
      mem.set(String(e.agent_id), [...(mem.get(String(e.agent_id)) ?? []), b / 2 ** 20]);
  }
  const growths = [...mem.values()].filter((xs) => xs.length >= 2).map((xs) => xs.at(-1)! - xs[0]!);
  const growth = growths.length ? Math.round(Math.max(...growths) * 10) / 10 : null;
  const count = (name: string) => ev.filter((e) => e.event === name).length;
  const failures = (name: string) => {
    const n = count(name);
    return n > t.validation_failures
      ? judge(true, n)
      : ev.length
        ? judge(false, n)
        : none('no events in the window');
  };
  const m = {
    error_rate: ev.length
      ? judge(errors / ev.length > t.error_rate, r3(errors / ev.length))
      : none('no events in the window'),
    connection_success:
      success === null
        ? none('no connection attempts in the window')
        : judge(success < minConnectionSuccess(t), r3(success)),
    memory_growth_mb:
      growth === null
        ? none('no agent reported memory twice in the window')
        : judge(growth > t.memory_growth_mb, growth),
    dtls_failures: failures('dtls_validation_failed'),
    signature_failures: failures('signature_verification_failed'),
  };
  return MONITOR_GATES.map((gate) => ({
    gate,
    threshold: thresholds[gate],
    ...m[gate],
  }));
}

export interface MonitorOptions {
  deploymentId: string;
  durationMs: number;
  intervalMs: number;
  windowMs: number;
  thresholds: Thresholds;
  failureLimit: number;
  consecutiveErrorLimit: number;
  optionalGates: string[];
  /** false: report a failed analysis and exit 1 without rolling back. */
  rollback: boolean;
  state: StateDir;
  config: MeshConfig;
  progress: Progress;
  onCheck: (c: MonitorCheck) => void;
}

export interface MonitorCheck extends CheckRecord {
  elapsed_ms: number;
  /** Events in the window; null when the witness did not answer. */
  events: number | null;
  failures: number;
}

export interface MonitorReport {
  deployment_id: string;
  checks: number;
  result: 'passed' | 'failed' | 'inconclusive';
  /** The gate that decided a failed or inconclusive run. */
  gate: Measurement | null;
  reason: string | null;
  rollback: RollbackReport | null;
}

export function monitorRules(
  o: Pick<MonitorOptions, 'failureLimit' | 'consecutiveErrorLimit' | 'optionalGates'>,
): AnalysisRules {
  const unknown = o.optionalGates.filter((g) => !(MONITOR_GATES as readonly string[]).includes(g));
  if (unknown.length)
    throw new UsageError(
      `--optional-gate ${unknown.join(', ')}: no such gate`,
      `one of ${MONITOR_GATES.join(', ')}`,
    );
  return {
    failure_limit: o.failureLimit,
    consecutive_error_limit: o.consecutiveErrorLimit,
    required: MONITOR_REQUIRED.filter((g) => !o.optionalGates.includes(g)),
  };
}

export async function monitor(o: MonitorOptions, ctx: OpContext): Promise<MonitorReport> {
  const rules = monitorRules(o);
  const start = ctx.clock.now();
  // The deployment's own events, plus its agents' (agents do not tag events with a deployment id).
  const release = (await listReleases(o.state)).find((r) => r.deployment_id === o.deploymentId);
  const agents = release?.agents ?? [];
  let p = freshProgress();
  const done = (v: Omit<MonitorReport, 'deployment_id' | 'checks'>): MonitorReport => ({
    deployment_id: o.deploymentId,
    checks: p.checks,
    ...v,
  });
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
    let window: Sourced<{ events: Record<string, unknown>[] }>;
    try {
      const [tagged, own] = await Promise.all([
        q({ deployment_id: o.deploymentId }),
        agents.length ? q({ agent_id: { $in: agents } }) : Promise.resolve([]),
      ]);
      window = { events: [...new Map([...tagged, ...own].map((e) => [String(e.id), e])).values()] };
    } catch (err) {
      window = { error: `witness ${o.config.witnessUrl}: ${(err as Error).message}` };
    }
    const now = ctx.clock.now();
    const c = checkRecord(new Date(now).toISOString(), evaluateWindow(window, o.thresholds));
    const step = recordCheck(p, c, rules);
    p = step.progress;
    o.onCheck({
      ...c,
      elapsed_ms: now - start,
      events: unanswered(window) ? null : window.events.length,
      failures: p.failures,
    });
    if (step.verdict?.result === 'failed') {
      const reason = `monitor: ${step.verdict.reason} for ${o.deploymentId}`;
      const rb = o.rollback
        ? await rollback(
            { state: o.state, target: undefined, reason, config: o.config, progress: o.progress },
            false,
            ctx,
          )
        : null;
      return done({ result: 'failed', gate: step.verdict.gate, reason, rollback: rb });
    }
    if (ctx.clock.now() - start + o.intervalMs > o.durationMs) break;
    await ctx.clock.sleep(o.intervalMs, ctx.signal);
  }
  const v = windowVerdict(p, rules);
  return v.result === 'passed'
    ? done({ result: 'passed', gate: null, reason: null, rollback: null })
    : done({ result: v.result, gate: v.gate, reason: `monitor: ${v.reason}`, rollback: null });
}
