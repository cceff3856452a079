// One look at the live mesh: every signaling instance's /metrics, /agents and /connections, and
// the witness's recent security and healing events. `monitoring check` and `top` both read it.
import type { Dispatcher } from 'undici';
import { httpRequest } from '../../clients/http.js';
import type { ConnectionReport } from '../../services/signaling/registry.js';
import { runWitnessQuery } from '../witness/query.js';
import { parseExposition, type Sample } from './exposition.js';

export interface MeshSample {
  taken_at: number;
  instances: { url: string; up: boolean; error?: string }[];
  samples: Sample[];
  agents: { agent_id: string; instance_id: string; connected_at: string }[];
  connections: ConnectionReport[];
  /** Counts of witness events in the last hour (null: the witness did not answer). */
  witness: { url: string; counts: Record<string, number> | null; error?: string } | null;
}

export interface CollectOptions {
  /** http(s) base URLs of the signaling instances. */
  signaling: string[];
  witness?: { url: string; token?: string | undefined } | undefined;
  now: () => number;
  dispatcher?: Dispatcher | undefined;
  timeoutMs?: number;
}

/** Witness events `monitoring check` counts over the last hour. */
export const WITNESS_EVENTS = [
  'signature_verification_failed',
  'mesh_healing_failed_final',
  'turn_fallback_initiated',
] as const;

async function instance(url: string, timeoutMs: number, dispatcher: Dispatcher | undefined) {
  const [metrics, agents, conns] = await Promise.all(
    ['/metrics', '/agents', '/connections'].map((p) => httpRequest(`${url}${p}`, { timeoutMs, dispatcher })),
  );
  if (metrics!.status !== 200 || agents!.status !== 200 || conns!.status !== 200)
    throw new Error(`answered ${metrics!.status}/${agents!.status}/${conns!.status}`);
  return {
    samples: parseExposition(metrics!.text).map((s) => ({ ...s, labels: { ...s.labels, instance: url } })),
    agents: (agents!.json as { agents: MeshSample['agents'] }).agents,
    connections: (conns!.json as { connections: ConnectionReport[] }).connections,
  };
}

export async function collectMesh(o: CollectOptions): Promise<MeshSample> {
  const timeoutMs = o.timeoutMs ?? 3_000;
  const out: MeshSample = {
    taken_at: o.now(),
    instances: [],
    samples: [],
    agents: [],
    connections: [],
    witness: null,
  };
  const results = await Promise.allSettled(o.signaling.map((u) => instance(u, timeoutMs, o.dispatcher)));
  results.forEach((r, i) => {
    const url = o.signaling[i]!;
    if (r.status === 'rejected') {
      out.instances.push({ url, up: false, error: (r.reason as Error).message });
      return;
    }
    out.instances.push({ url, up: true });
    out.samples.push(...r.value.samples);
    out.agents.push(...r.value.agents);
    out.connections.push(...r.value.connections);
  });
  if (o.witness) {
    const w = o.witness;
    try {
      const counts: Record<string, number> = {};
      for (const event of WITNESS_EVENTS) {
        const a = await runWitnessQuery({
          url: w.url,
          token: w.token,
          timeoutMs,
          dispatcher: o.dispatcher,
          body: { query: { event }, time_range: { from: '-1h', to: 'now' }, limit: 1000 },
        });
        counts[event] = a.count ?? a.results.length;
      }
      out.witness = { url: w.url, counts };
    } catch (err) {
      out.witness = { url: w.url, counts: null, error: (err as Error).message };
    }
  }
  return out;
}
