// The runbook's weekly-maintenance.sh, cron-safe: under the maintenance lock, the integration check
// (`verify --message-exchange`), a latency baseline from the signaling instances' /metrics (and
// Prometheus when configured), security events over 7 days, and capacity headroom. When something
// needs a person the team is told (Slack and/or e-mail, notify.ts).
import { httpRequest } from '../../clients/http.js';
import { wsUrlOf } from '../../clients/signaling.js';
import { type ExchangeOptions, type ExchangeReport, messageExchange } from '../agent/exchange.js';
import { collectMesh } from '../monitoring/collect.js';
import { histogramQuantile, sum } from '../monitoring/exposition.js';
import type { OpContext } from '../shared.js';
import {
  countWitnessEvents,
  errorText,
  type MaintenanceTargets,
  utcDay,
  withMaintenanceLock,
  writeJsonWhole,
} from './common.js';
import { type NoticeIo, type NoticeOutcome, tellSomeone } from './notify.js';

export interface WeeklyOptions extends MaintenanceTargets {
  exchange: Omit<ExchangeOptions, 'signalingUrls' | 'clock' | 'witness' | 'events'>;
  /** Agents the mesh is sized for; headroom is measured against it. */
  maxAgents: number;
  /** Below this fraction of free capacity, a person should plan scaling. */
  minHeadroom: number;
  prometheus?: string | undefined;
  /** Who is told when something needs a person. */
  notice?: NoticeIo;
}

export interface LatencyBaseline {
  source: 'metrics' | 'prometheus';
  p50_ms: number | null;
  p95_ms: number | null;
  mean_ms: number | null;
  samples: number;
  error?: string;
}

export interface WeeklyReport {
  maintenance_id: string;
  timestamp: string;
  ok: boolean;
  needs_human: string[];
  integration: ExchangeReport | { ok: false; error: string };
  latency: LatencyBaseline[];
  security_events_7d: number | null;
  capacity: {
    instances_up: number;
    agents: number;
    max_agents: number;
    headroom_ratio: number;
    memory_per_agent_mb: number | null;
  };
  report_file: string;
  notice: NoticeOutcome;
}

export async function runWeekly(
  o: WeeklyOptions,
  ctx: Pick<OpContext, 'clock' | 'exec' | 'dispatcher' | 'signal'>,
): Promise<WeeklyReport> {
  return withMaintenanceLock(o.state, 'maintenance weekly', ctx.clock, () => weekly(o, ctx));
}

async function prometheusBaseline(url: string, ctx: Pick<OpContext, 'dispatcher'>): Promise<LatencyBaseline> {
  const q = async (expr: string) => {
    const a = await httpRequest(`${url.replace(/\/+$/, '')}/api/v1/query?query=${encodeURIComponent(expr)}`, {
      timeoutMs: 10_000,
      dispatcher: ctx.dispatcher,
    });
    const r = (a.json as { data?: { result?: { value: [number, string] }[] } })?.data?.result?.[0];
    const v = r ? Number(r.value[1]) : Number.NaN;
    return Number.isFinite(v) ? v : null;
  };
  try {
    const rate = (s: string) => `sum(increase(webrtc_rtt_milliseconds_${s}[7d]))`;
    const byLe = 'sum by (le) (increase(webrtc_rtt_milliseconds_bucket[7d]))';
    const [p50, p95, total, count] = await Promise.all([
      q(`histogram_quantile(0.5, ${byLe})`),
      q(`histogram_quantile(0.95, ${byLe})`),
      q(rate('sum')),
      q(rate('count')),
    ]);
    return {
      source: 'prometheus',
      p50_ms: p50,
      p95_ms: p95,
      mean_ms: total !== null && count ? total / count : null,
      samples: Math.round(count ?? 0),
    };
  } catch (err) {
    return {
      source: 'prometheus',
      p50_ms: null,
      p95_ms: null,
      mean_ms: null,
      samples: 0,
      error: errorText(err),
    };
  }
}

async function weekly(
  o: WeeklyOptions,
  ctx: Pick<OpContext, 'clock' | 'dispatcher' | 'signal'>,
): Promise<WeeklyReport> {
  const now = ctx.clock.now();
  const needs: string[] = [];
  let urgent = false;

  let integration: WeeklyReport['integration'];
  try {
    integration = await messageExchange({
      ...o.exchange,
      signalingUrls: o.signaling.map(wsUrlOf),
      clock: ctx.clock,
    });
    if (!integration.ok) needs.push(`integration check failed: ${integration.failures.join('; ')}`);
  } catch (err) {
    integration = { ok: false, error: errorText(err) };
    needs.push(`integration check could not run: ${integration.error}`);
  }

  const mesh = await collectMesh({ signaling: o.signaling, now: () => now, dispatcher: ctx.dispatcher });
  const up = mesh.instances.filter((i) => i.up).length;
  if (up === 0) {
    needs.push(
      `no signaling instance answers: ${mesh.instances.map((i) => `${i.url} (${i.error})`).join(', ')}`,
    );
    urgent = true;
  }
  const count = sum(mesh.samples, 'webrtc_rtt_milliseconds_count');
  const latency: LatencyBaseline[] = [
    {
      source: 'metrics',
      p50_ms: histogramQuantile(0.5, mesh.samples, 'webrtc_rtt_milliseconds'),
      p95_ms: histogramQuantile(0.95, mesh.samples, 'webrtc_rtt_milliseconds'),
      mean_ms: count ? sum(mesh.samples, 'webrtc_rtt_milliseconds_sum') / count : null,
      samples: count,
    },
  ];
  if (o.prometheus) {
    const prom = await prometheusBaseline(o.prometheus, ctx);
    if (prom.error) needs.push(`Prometheus ${o.prometheus} did not answer: ${prom.error}`);
    latency.push(prom);
  }

  let security: number | null = null;
  if (o.witness) {
    try {
      security = await countWitnessEvents(o.witness, ctx, 'security|failure|error', '-7d');
      if (security > 0)
        needs.push(
          `${security} security/failure events in the last 7 days: ifmesh witness query --since 7d --regex event='security|failure|error'`,
        );
    } catch (err) {
      needs.push(`witness query failed: ${errorText(err)}`);
    }
  } else needs.push('no witness configured: security events not counted');

  const agents = new Set(mesh.agents.map((a) => a.agent_id)).size;
  const memory = mesh.samples.filter((s) => s.name === 'webrtc_memory_bytes');
  const headroom = o.maxAgents > 0 ? Math.max(0, 1 - agents / o.maxAgents) : 0;
  if (headroom < o.minHeadroom)
    needs.push(
      `capacity: ${agents} agents of ${o.maxAgents} (headroom ${(headroom * 100).toFixed(0)} %, under ${(o.minHeadroom * 100).toFixed(0)} %): plan scaling`,
    );
  const reportFile = o.state.weeklyReport(utcDay(now));
  const id = `MAINT-W-${utcDay(now)}`;
  const notice = await tellSomeone(
    {
      id,
      kind: 'maintenance-weekly',
      title: 'ifmesh weekly maintenance needs a person',
      severity: urgent ? 'P3' : 'P4',
      needs,
      started_at: new Date(now).toISOString(),
      details: { Report: reportFile, 'Run again': `ifmesh maintenance weekly --state-dir ${o.state.root}` },
    },
    { notifiers: o.notice?.notifiers ?? {}, notify: o.notice?.notify ?? true },
    ctx,
  );
  const report: WeeklyReport = {
    maintenance_id: id,
    timestamp: new Date(now).toISOString(),
    ok: needs.length === 0,
    needs_human: needs,
    integration,
    latency,
    security_events_7d: security,
    capacity: {
      instances_up: up,
      agents,
      max_agents: o.maxAgents,
      headroom_ratio: Number(headroom.toFixed(4)),
      memory_per_agent_mb: memory.length
        ? Number((memory.reduce((n, s) => n + s.value, 0) / memory.length / 1_048_576).toFixed(2))
        : null,
    },
    report_file: reportFile,
    notice,
  };
  writeJsonWhole(reportFile, report);
  return report;
}
