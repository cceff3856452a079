// One look at the live mesh: every signaling instance's /health, /metrics, /agents and /connections,
// and the witness's recent security and healing events. `monitoring check` and `top` both read it.
// Instances of one cluster list the same agents and reports: they are merged, each counted once.
// Metrics are per instance (each counts what its own agents report), so they add up as they are.

import type { Dispatcher } from 'undici';
import { answeredFix } from '../../clients/http.js';
import { SignalingClient } from '../../clients/signaling.js';
import type { AgentInfo, ConnectionInfo } from '../../protocol/signaling-api.js';
import { mergeAgents, mergeConnections } from '../fleet-views.js';
import { runWitnessQuery } from '../witness/query.js';
import { parseExposition, type Sample } from './exposition.js';

export interface MeshSample {
  taken_at: number;
  instances: {
    url: string;
    up: boolean;
    error?: string;
    /**
     * It answered, but not in a way this command can use (a certificate it cannot verify, TLS on an
     * http:// URL): it runs, and this is what to do (--ca FILE, renew, https://…).
     */
    answered?: NonNullable<ReturnType<typeof answeredFix>>;
    instance_id?: string;
    cluster_id?: string;
  }[];
  samples: Sample[];
  /** Each agent once, however many instances list it. */
  agents: AgentInfo[];
  /** Each report (agent -> peer) once. */
  connections: ConnectionInfo[];
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

async function instance(client: SignalingClient) {
  const [health, metrics, agents, connections] = await Promise.all([
    client.health(),
    client.metrics(),
    client.agents(),
    client.connections(),
  ]);
  const url = client.url;
  return {
    health,
    samples: parseExposition(metrics).map((s) => ({ ...s, labels: { ...s.labels, instance: url } })),
    agents,
    connections,
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
  const clients = o.signaling.map((u) => new SignalingClient(u, { timeoutMs, dispatcher: o.dispatcher }));
  const results = await Promise.allSettled(clients.map((c) => instance(c)));
  const answered: Awaited<ReturnType<typeof instance>>[] = [];
  results.forEach((r, i) => {
    const url = clients[i]!.url;
    if (r.status === 'rejected') {
      const e = r.reason as Error;
      out.instances.push({
        url,
        up: false,
        error: e.message,
        ...(answeredFix(e) ? { answered: answeredFix(e)! } : {}),
      });
      return;
    }
    const h = r.value.health;
    out.instances.push({
      url,
      up: h.status !== 'down',
      instance_id: h.instance_id,
      ...(h.cluster_id ? { cluster_id: h.cluster_id } : {}),
      ...(h.status === 'down' ? { error: `draining (${h.reason})` } : {}),
    });
    out.samples.push(...r.value.samples);
    answered.push(r.value);
  });
  out.agents = mergeAgents(answered.map((a) => a.agents));
  out.connections = mergeConnections(answered.map((a) => a.connections));
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
