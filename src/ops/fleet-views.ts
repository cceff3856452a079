// Views over several signaling instances that count each thing once. Instances of one Redis cluster
// share a registry, so each of them lists every agent and every connection report of the cluster;
// standalone instances list only their own. Merging by identity gives the same answer either way,
// and an admin push goes to one instance per cluster (the cluster applies it everywhere).
import type { Dispatcher } from 'undici';
import { type ClusterGroup, groupByCluster, SignalingClient } from '../clients/signaling.js';
import type { AgentInfo, ConnectionInfo, Health } from '../protocol/signaling-api.js';

const time = (iso: string | undefined) => {
  const t = iso === undefined ? Number.NaN : Date.parse(iso);
  return Number.isFinite(t) ? t : Number.NEGATIVE_INFINITY;
};

/**
 * Every agent once, by agent id within its mesh, whichever instances listed it. When two answers
 * disagree (an agent that moved between registries) the latest registration wins.
 */
export function mergeAgents<A extends { agent_id: string; mesh?: string | undefined; connected_at?: string }>(
  answers: readonly { agents: readonly A[] }[],
): A[] {
  const out = new Map<string, A>();
  for (const answer of answers)
    for (const a of answer.agents) {
      const key = `${a.mesh ?? ''}\u0000${a.agent_id}`;
      const had = out.get(key);
      if (!had || time(a.connected_at) > time(had.connected_at)) out.set(key, a);
    }
  return [...out.values()];
}

/**
 * Every connection report once: one per reporting agent and peer (agent_id -> peer_id), the latest
 * (`updated_at`) standing for the pair's state when answers disagree.
 */
export function mergeConnections<C extends { agent_id: string; peer_id: string; updated_at?: string }>(
  answers: readonly { connections: readonly C[] }[],
): C[] {
  const out = new Map<string, C>();
  for (const answer of answers)
    for (const c of answer.connections) {
      const key = `${c.agent_id}\u0000${c.peer_id}`;
      const had = out.get(key);
      if (!had || time(c.updated_at) > time(had.updated_at)) out.set(key, c);
    }
  return [...out.values()];
}

export interface InstanceLook {
  url: string;
  client: SignalingClient;
  /** null: /health did not answer (the instance is then a group of its own). */
  health: Health | null;
  error?: string;
}

export interface ClientOptions {
  dispatcher?: Dispatcher | undefined;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  adminToken?: string | undefined;
}

/** Each instance's /health, in the order given. */
export async function lookAtInstances(urls: readonly string[], o: ClientOptions): Promise<InstanceLook[]> {
  return Promise.all(
    urls.map(async (u): Promise<InstanceLook> => {
      const client = new SignalingClient(u, o);
      try {
        return { url: client.url, client, health: await client.health() };
      } catch (err) {
        return { url: client.url, client, health: null, error: (err as Error).message };
      }
    }),
  );
}

export type PerCluster<T> = {
  cluster_id: string | null;
  /** Every instance of the group. */
  urls: string[];
  /** The instance that took the call (the last one tried when none did). */
  url: string;
} & ({ ok: true; value: T } | { ok: false; error: Error });

/**
 * `call` once per cluster group: on the first member that answered /health, then the others in turn
 * while the call fails (an instance that died since); a group's error is the last member's.
 */
export async function perCluster<T>(
  looks: readonly InstanceLook[],
  call: (client: SignalingClient) => Promise<T>,
): Promise<PerCluster<T>[]> {
  return Promise.all(
    groupByCluster(looks).map(async (g: ClusterGroup<InstanceLook>): Promise<PerCluster<T>> => {
      const urls = g.members.map((m) => m.url);
      const order = [...g.members.filter((m) => m.health), ...g.members.filter((m) => !m.health)];
      let last: { url: string; error: Error } = { url: urls[0]!, error: new Error('no instance') };
      for (const m of order) {
        try {
          return { cluster_id: g.cluster_id, urls, url: m.url, ok: true, value: await call(m.client) };
        } catch (err) {
          last = { url: m.url, error: err as Error };
        }
      }
      return { cluster_id: g.cluster_id, urls, ...last, ok: false };
    }),
  );
}

export interface MeshRead {
  /** up: all three answered and the instance is serving (not draining). */
  instances: { url: string; up: boolean; instance_id?: string; cluster_id?: string; error?: string }[];
  /** Merged: each agent once. */
  agents: AgentInfo[];
  /** Merged: each report once. */
  connections: ConnectionInfo[];
}

/**
 * /health, /agents and /connections of every instance, merged. An instance that did not answer all
 * three contributes nothing and carries the error.
 */
export async function readMesh(urls: readonly string[], o: ClientOptions): Promise<MeshRead> {
  const answers = await Promise.all(
    urls.map(async (u) => {
      const client = new SignalingClient(u, o);
      try {
        const [health, agents, connections] = await Promise.all([
          client.health(),
          client.agents(),
          client.connections(),
        ]);
        return { url: client.url, health, agents, connections };
      } catch (err) {
        return { url: client.url, error: (err as Error).message };
      }
    }),
  );
  const answered = answers.flatMap((a) => ('error' in a ? [] : [a]));
  return {
    instances: answers.map((a) =>
      'error' in a
        ? { url: a.url, up: false, error: a.error }
        : {
            url: a.url,
            up: a.health.status !== 'down',
            instance_id: a.health.instance_id,
            ...(a.health.cluster_id ? { cluster_id: a.health.cluster_id } : {}),
            ...(a.health.status === 'down' ? { error: `draining (${a.health.reason})` } : {}),
          },
    ),
    agents: mergeAgents(answered.map((a) => a.agents)),
    connections: mergeConnections(answered.map((a) => a.connections)),
  };
}
