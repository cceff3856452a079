// P2 high latency (incident-response-p2-high-latency.sh): how many connections are slow, how many
// go through TURN, then bandwidth adaptation pushed to every cluster (POST /config/bandwidth).
import type { BandwidthRequest } from '../../protocol/signaling-api.js';
import { lookAtInstances, perCluster } from '../fleet-views.js';
import type { MeshSample } from '../monitoring/collect.js';
import type { OpContext } from '../shared.js';
import { runWitnessQuery } from '../witness/query.js';

/** The runbook's P2 threshold: RTT above 500 ms. */
export const HIGH_RTT_MS = 500;
export const BANDWIDTH = { enableBandwidthAdaptation: true, maxBitrateMbps: 1 } as const;

export interface LatencyFindings {
  total_connections: number;
  high_latency: { pairs: number; events_5m: number | null; ratio: number | null };
  turn: { connections: number; pairs_5m: number | null; share: number | null };
  /** More than half of the connections through TURN: the runbook checks the TURN servers next. */
  turn_dominant: boolean;
}

const pair = (e: Record<string, unknown>) => `${String(e.agent_id)}→${String(e.peer_id)}`;

export async function quantifyLatency(
  sample: MeshSample,
  witness: { url: string; token?: string | undefined } | null,
  ctx: Pick<OpContext, 'dispatcher'>,
): Promise<LatencyFindings> {
  const total = sample.connections.length;
  const slowNow = new Set(
    sample.connections.filter((c) => (c.rtt_ms ?? 0) > HIGH_RTT_MS).map((c) => `${c.agent_id}→${c.peer_id}`),
  );
  const relayNow = sample.connections.filter((c) => c.candidate_type === 'relay').length;
  let slowEvents: number | null = null;
  let relayPairs: number | null = null;
  if (witness) {
    const q = (query: Record<string, unknown>) =>
      runWitnessQuery({
        url: witness.url,
        token: witness.token,
        dispatcher: ctx.dispatcher,
        timeoutMs: 3_000,
        body: { query, time_range: { from: '-5m', to: 'now' }, limit: 10_000 },
      });
    try {
      const slow = await q({
        event: 'connection_quality_update',
        'metadata.roundTripTime': { $gt: HIGH_RTT_MS },
      });
      slowEvents = slow.results.length;
      for (const e of slow.results) slowNow.add(pair(e));
      const relay = await q({ event: 'connection_quality_update', 'metadata.candidateType': 'relay' });
      relayPairs = new Set(relay.results.map(pair)).size;
    } catch {
      // The witness's part stays null: the report says it did not answer.
    }
  }
  const relay = Math.max(relayNow, relayPairs ?? 0);
  const denom = Math.max(total, slowNow.size, relay);
  return {
    total_connections: total,
    high_latency: { pairs: slowNow.size, events_5m: slowEvents, ratio: denom ? slowNow.size / denom : null },
    turn: { connections: relayNow, pairs_5m: relayPairs, share: denom ? relay / denom : null },
    turn_dominant: denom > 0 && relay > denom / 2,
  };
}

export interface BandwidthPush {
  instance: string;
  ok: boolean;
  pushed: number | null;
  detail: string;
  /** A cluster's instances, which the one push reached (the cluster applies it to all its agents). */
  covers?: string[];
}

/** Bandwidth adaptation, pushed once per cluster (each standalone instance is its own). */
export async function pushBandwidth(
  instances: string[],
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
  body: BandwidthRequest = BANDWIDTH,
): Promise<BandwidthPush[]> {
  const looks = await lookAtInstances(instances, {
    timeoutMs: 3_000,
    dispatcher: ctx.dispatcher,
    signal: ctx.signal,
  });
  const results = await perCluster(looks, (c) => c.setBandwidth(body));
  return results.map((r) => ({
    instance: r.url,
    ok: r.ok,
    pushed: r.ok ? r.value.pushed : null,
    detail: r.ok
      ? `pushed to ${r.value.pushed} agent(s)${r.urls.length > 1 ? ` of cluster ${r.cluster_id}` : ''}`
      : r.error.message,
    ...(r.urls.length > 1 ? { covers: r.urls } : {}),
  }));
}

/** The bandwidth setting the fleet had before the P2 capped it: what `incident resolve` puts back. */
export type BandwidthSetting = { enableBandwidthAdaptation: boolean; maxBitrateMbps: number | null };

/** The instances' bandwidth setting now (the first that answers); none pushed yet: adaptation off. */
export async function currentBandwidth(
  instances: string[],
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
): Promise<BandwidthSetting | null> {
  const looks = await lookAtInstances(instances, {
    timeoutMs: 3_000,
    dispatcher: ctx.dispatcher,
    signal: ctx.signal,
  });
  for (const l of looks) {
    const c = await l.client.config().catch(() => undefined);
    if (c) return c.bandwidth ?? { enableBandwidthAdaptation: false, maxBitrateMbps: null };
  }
  return null;
}

/**
 * `incident resolve` of a P2 that capped the bandwidth: the setting from before it goes back to the
 * instances it was pushed to, so agents do not stay at 1 Mbit/s after the incident.
 */
export async function restoreBandwidth(
  pushed: BandwidthPush[],
  before: BandwidthSetting,
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
): Promise<BandwidthPush[]> {
  const urls = pushed.filter((p) => p.ok).map((p) => p.instance);
  if (urls.length === 0) return [];
  return pushBandwidth(urls, ctx, {
    enableBandwidthAdaptation: before.enableBandwidthAdaptation,
    ...(before.maxBitrateMbps !== null ? { maxBitrateMbps: before.maxBitrateMbps } : {}),
  });
}
