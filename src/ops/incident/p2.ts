// P2 high latency (incident-response-p2-high-latency.sh): how many connections are slow, how many
// go through TURN, then bandwidth adaptation pushed to every instance (POST /config/bandwidth).
import { httpRequest } from '../../clients/http.js';
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
}

export async function pushBandwidth(
  instances: string[],
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
): Promise<BandwidthPush[]> {
  return Promise.all(
    instances.map(async (url) => {
      try {
        const r = await httpRequest(`${url}/config/bandwidth`, {
          method: 'POST',
          body: JSON.stringify(BANDWIDTH),
          timeoutMs: 3_000,
          dispatcher: ctx.dispatcher,
          signal: ctx.signal,
        });
        const pushed = (r.json as { pushed?: number } | undefined)?.pushed ?? null;
        return {
          instance: url,
          ok: r.status === 200,
          pushed,
          detail: r.status === 200 ? `pushed to ${pushed} agent(s)` : `answered ${r.status}`,
        };
      } catch (err) {
        return { instance: url, ok: false, pushed: null, detail: (err as Error).message };
      }
    }),
  );
}
