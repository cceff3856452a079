// ifmesh failover validate: the failover guide's validate-failover-recovery.sh. Seven checks, each
// with a verdict: agents registered, connections established (≥ 80 %), message delivery (the
// verify message exchange), latency (the exchange's RTT p95), witness events under this failover id,
// the error-rate trend over three 5-minute windows, and the measured recovery time against the
// guide's target for the scenario (its classification table). All pass: `failover_recovery_validated`.
import { httpRequest } from '../../clients/http.js';
import { UsageError } from '../../errors.js';
import { formatDuration, formatMs, formatPercent } from '../../ui/units.js';
import { systemClock } from '../../util/clock.js';
import { waitFor } from '../../util/wait.js';
import type { ExchangeReport } from '../agent/exchange.js';
import { logEvents, queryWitness, type WitnessTarget } from '../events.js';
import type { OpContext } from '../shared.js';
import { classOf } from './classification.js';

export const SCENARIOS = ['A', 'B', 'C', 'D', 'E'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export type CheckName =
  | 'registration'
  | 'connection_establishment'
  | 'message_delivery'
  | 'latency'
  | 'witness_events'
  | 'error_rate_trend'
  | 'recovery_time';

export interface ValidationCheck {
  name: CheckName;
  passed: boolean;
  detail: string;
  data?: Record<string, unknown>;
}

export interface ValidationReport {
  failover_id: string;
  scenario: Scenario;
  passed: boolean;
  checks: ValidationCheck[];
}

export interface ValidateOptions {
  failoverId: string;
  scenario: Scenario;
  /** http(s) base URLs of every signaling instance. */
  signalingHttp: string[];
  witness: WitnessTarget;
  /** The message delivery check: temporary agents through the recovered stack. */
  exchange: () => Promise<ExchangeReport>;
  /** Connected share of reported connections below which the check fails (the guide's 80 %). */
  minSuccessRate?: number;
  /** RTT p95 above which latency fails (the runbook's 100 ms delivery target). */
  maxRttP95Ms?: number;
  /**
   * The run's own measurement (a scenario validating itself); absent, it is read from the witness
   * (`failover_service_restored` under the failover id).
   */
  recovery?: { recovery_ms: number | null } | undefined;
  onCheck?: (c: ValidationCheck) => void;
}

export const CHECK_TITLES: Record<CheckName, string> = {
  registration: 'agent registration',
  connection_establishment: 'connection establishment',
  message_delivery: 'message delivery',
  latency: 'latency',
  witness_events: 'IF.witness failover events',
  error_rate_trend: 'error-rate trend',
  recovery_time: 'recovery time',
};

/** How long the connection check waits for the agents' reports to catch up with a failover. */
export const REPORT_SETTLE_MS = 10_000;

export async function validateRecovery(
  o: ValidateOptions,
  ctx: Pick<OpContext, 'signal' | 'dispatcher'> & Partial<Pick<OpContext, 'clock'>>,
): Promise<ValidationReport> {
  const checks: ValidationCheck[] = [];
  const add = (c: ValidationCheck) => {
    checks.push(c);
    o.onCheck?.(c);
  };
  const get = async (base: string, p: string) => {
    const r = await httpRequest(`${base.replace(/\/+$/, '')}${p}`, {
      timeoutMs: 5_000,
      dispatcher: ctx.dispatcher,
      signal: ctx.signal,
    });
    if (r.status !== 200) throw new Error(`${base}${p} answered ${r.status}`);
    return r.json as Record<string, unknown>;
  };
  const query = async (q: Record<string, unknown>, from: string, to: string) => {
    let r: Awaited<ReturnType<typeof queryWitness>>;
    for (let attempt = 1; ; attempt++) {
      r = await queryWitness(o.witness, { query: q, time_range: { from, to } }, ctx, 10_000);
      // 503 is the witness cutting a scan at its time budget while busy (a loaded host right after
      // a failover): read again, twice at most, before the check counts as failed.
      if (r.status !== 503 || attempt >= 3) break;
      await (ctx.clock ?? systemClock).sleep(500, ctx.signal);
    }
    if (r.status !== 200) throw new Error(`witness /api/query answered ${r.status}`);
    return r.results ?? [];
  };
  const count = async (q: Record<string, unknown>, from: string, to: string) =>
    (await query(q, from, to)).length;
  const guard = async (name: CheckName, f: () => Promise<ValidationCheck>) => {
    try {
      add(await f());
    } catch (err) {
      ctx.signal.throwIfAborted();
      add({ name, passed: false, detail: err instanceof Error ? err.message : String(err) });
    }
  };

  // A reading that lags a failover (agents reconnecting, reports not yet sent) is read again, once a
  // second, for up to REPORT_SETTLE_MS; without a clock it is taken as it is.
  const settle = async (read: () => Promise<boolean>) => {
    if (ctx.clock)
      await waitFor(read, { timeoutMs: REPORT_SETTLE_MS, intervalMs: 1_000 }, ctx.clock, ctx.signal);
  };

  // 1. registration: distinct agents over every instance. Right after a failover the agents may
  // still be reconnecting (or an instance slow to answer on a loaded host): a failed read is read
  // again for up to REPORT_SETTLE_MS before it counts.
  await guard('registration', async () => {
    const ids = new Set<string>();
    let error: unknown;
    const read = async () => {
      ids.clear();
      error = undefined;
      try {
        for (const b of o.signalingHttp)
          for (const a of ((await get(b, '/agents')).agents as { agent_id: string }[] | undefined) ?? [])
            ids.add(a.agent_id);
      } catch (err) {
        error = err;
      }
      return error === undefined && ids.size > 0;
    };
    if (!(await read())) await settle(read);
    if (error !== undefined) throw error;
    return {
      name: 'registration',
      passed: ids.size > 0,
      detail: ids.size > 0 ? `${ids.size} agents registered` : 'CRITICAL: no agents registered',
      data: { registered_agents: ids.size },
    };
  });

  // 2. connection establishment: connected / reported. An agent reports a link with its next quality
  // update (every 2 s): right after a failover moved the pair, its last report may still say failed,
  // so a rate under the minimum is read again for up to REPORT_SETTLE_MS before it counts.
  await guard('connection_establishment', async () => {
    const min = o.minSuccessRate ?? 0.8;
    let total = 0;
    let connected = 0;
    const read = async () => {
      total = 0;
      connected = 0;
      for (const b of o.signalingHttp)
        for (const c of ((await get(b, '/connections')).connections as { state: string }[] | undefined) ??
          []) {
          total += 1;
          if (c.state === 'connected') connected += 1;
        }
      return total > 0 && connected / total >= min;
    };
    // Nothing reported at all is not a lag: it fails at once.
    if (!(await read()) && total > 0) await settle(read);
    const rate = total ? connected / total : null;
    return {
      name: 'connection_establishment',
      passed: rate !== null && rate >= min,
      detail:
        rate === null
          ? 'no connections reported'
          : `success rate ${formatPercent(rate)} (${connected}/${total}; at least ${formatPercent(min)})`,
      data: { connected, total, success_rate: rate },
    };
  });

  // 3 and 4. message delivery and latency, from one exchange.
  let exchange: ExchangeReport | undefined;
  await guard('message_delivery', async () => {
    exchange = await o.exchange();
    return {
      name: 'message_delivery',
      passed: exchange.pongs_received > 0 && exchange.delivery_ratio >= exchange.thresholds.delivery_ratio,
      detail: `${exchange.pongs_received}/${exchange.pings_sent} delivered over ${exchange.pairs} pairs${exchange.signature_failures ? `, ${exchange.signature_failures} signature failures` : ''}`,
      data: { delivery_ratio: exchange.delivery_ratio, signature_failures: exchange.signature_failures },
    };
  });
  await guard('latency', async () => {
    const max = o.maxRttP95Ms ?? 100;
    const p95 = exchange?.rtt_ms.p95 ?? null;
    const p50 = exchange?.rtt_ms.p50 ?? null;
    return {
      name: 'latency',
      passed: p95 !== null && p95 <= max,
      detail:
        p95 === null
          ? 'no round trip measured'
          : `RTT p50 ${p50 === null ? '-' : formatMs(p50)}, p95 ${formatMs(p95)} (at most ${formatMs(max)})`,
      data: { rtt_ms: exchange?.rtt_ms ?? null },
    };
  });

  // 5. witness events under this failover id, the last hour.
  await guard('witness_events', async () => {
    const n = await count({ failover_id: o.failoverId }, '-1h', 'now');
    return {
      name: 'witness_events',
      passed: n > 0,
      detail: n > 0 ? `${n} events logged for ${o.failoverId}` : `no witness events for ${o.failoverId}`,
      data: { events: n },
    };
  });

  // 6. error-rate trend: errors in the last 5 minutes, 5-10 and 10-15 minutes ago; growing fails.
  await guard('error_rate_trend', async () => {
    const windows: number[] = [];
    for (let i = 1; i <= 3; i++)
      windows.push(
        await count({ event: { regex: '.*error.*' } }, `-${i * 5}m`, i === 1 ? 'now' : `-${(i - 1) * 5}m`),
      );
    const [last, before] = windows as [number, number, number];
    const rising = last > before;
    return {
      name: 'error_rate_trend',
      passed: !rising,
      detail: `errors per 5 minutes, newest first: ${windows.join(', ')}${rising ? ' (rising)' : ''}`,
      data: { errors: windows },
    };
  });

  // 7. recovery time: from the run's start to the step that restored service, against the guide's
  // figure for the scenario. Not measured (never restored, or no record of it) is a failure.
  await guard('recovery_time', async () => {
    const cls = classOf(o.scenario);
    let ms = o.recovery?.recovery_ms;
    if (o.recovery === undefined) {
      const restored = await query(
        { event: 'failover_service_restored', failover_id: o.failoverId },
        '-30d',
        'now',
      );
      const v = (restored.at(-1)?.metadata as { recovery_ms?: unknown } | undefined)?.recovery_ms;
      ms = typeof v === 'number' && Number.isFinite(v) ? v : null;
    }
    const target = `target < ${formatDuration(cls.target_ms)} (the guide: ${cls.recovery_time})`;
    if (ms === null || ms === undefined)
      return {
        name: 'recovery_time',
        passed: false,
        detail: `no recovery measured for ${o.failoverId}: service was not restored by the run (no failover_service_restored); ${target}`,
        data: { recovery_ms: null, target_ms: cls.target_ms },
      };
    return {
      name: 'recovery_time',
      passed: ms <= cls.target_ms,
      detail: `recovered in ${formatDuration(ms)}, ${target}${ms > cls.target_ms ? ': MISSED' : ''}`,
      data: { recovery_ms: ms, target_ms: cls.target_ms, auto_target_ms: cls.auto_target_ms },
    };
  });

  const report: ValidationReport = {
    failover_id: o.failoverId,
    scenario: o.scenario,
    passed: checks.every((c) => c.passed),
    checks,
  };
  if (report.passed)
    await logEvents(
      o.witness,
      'ifmesh-failover',
      [
        {
          event: 'failover_recovery_validated',
          failover_id: o.failoverId,
          metadata: {
            scenario: o.scenario,
            checks: Object.fromEntries(checks.map((c) => [c.name, c.passed])),
          },
        },
      ],
      ctx,
    );
  return report;
}

export function parseScenario(s: string): Scenario {
  const up = s.toUpperCase();
  if (!(SCENARIOS as readonly string[]).includes(up))
    throw new UsageError(`unknown scenario ${s}`, 'use one of A, B, C, D, E');
  return up as Scenario;
}
