// Moving agents between releases one at a time: the unit deploy, canary and rollback share. An agent
// keeps its process name (deploy-agent-<id>) whichever release it runs, so `status` and `down` see
// one process per agent.
import type { Dispatcher } from 'undici';
import { httpUrlOf, SignalingClient } from '../../clients/signaling.js';
import type { Clock } from '../../util/clock.js';
import { waitFor } from '../../util/wait.js';
import { type AgentSpec, type Release, specEnv } from '../deploy/releases.js';
import { withRestartLock } from '../fleet/restart.js';
import type { Supervisor } from '../fleet/supervisor.js';
import { ownBin } from '../release/install.js';

export const agentProcessName = (id: string) => `deploy-agent-${id}`;

/**
 * Starts the agent on `spec` with its release's entry script (the running ifmesh's when the release
 * has no installed code), its secret overrides read back from the state's secrets file.
 */
export function startAgent(sup: Supervisor, spec: AgentSpec): number {
  const env = specEnv(sup.state, spec);
  return sup.start({
    name: agentProcessName(spec.agent_id),
    role: 'agents',
    command: process.execPath,
    args: [
      spec.bin ?? ownBin(),
      'agent',
      'run',
      '--config',
      spec.config,
      '--signaling',
      spec.signaling.join(','),
      '--state-dir',
      sup.state.root,
    ],
    env,
    cwd: spec.cwd,
    // Kept running by the state's supervisor like the services; a canary counts its restarts
    // (agents_healthy), so a candidate that crashes and comes back still fails the analysis.
    supervised: true,
  });
}

/**
 * Stops the agent's current process (whatever release it runs) and starts it on `spec`'s, under its
 * restart lock: the supervisor never restarts the old spec in between.
 */
export async function moveAgent(sup: Supervisor, spec: AgentSpec, graceMs = 5_000): Promise<number> {
  const name = agentProcessName(spec.agent_id);
  return withRestartLock(sup.state, name, `moving ${spec.agent_id}`, { clock: sup.clock }, async () => {
    await sup.stop(name, graceMs);
    return startAgent(sup, spec);
  });
}

/** Stops agent `id` for good (it is not in the release now running), under its restart lock. */
export async function stopAgent(sup: Supervisor, id: string, graceMs = 5_000) {
  const name = agentProcessName(id);
  return withRestartLock(sup.state, name, `stopping ${id}`, { clock: sup.clock }, () =>
    sup.stop(name, graceMs),
  );
}

/** The signaling instances' HTTP base URLs of a release (by role; older deploy records by name). */
export function instanceUrls(r: Pick<Release, 'processes'>): string[] {
  return r.processes
    .filter((p) => (p.role === 'signaling' || p.name.startsWith('deploy-signaling-')) && p.port)
    .map((p) => (p.url ? httpUrlOf(p.url) : `http://127.0.0.1:${p.port}`));
}

/** Where an agent is registered: the instance listing it, and the registry that instance shares. */
export interface Registration {
  url: string;
  /** The cluster_id of a cluster's instances (one registry), else the instance's own URL. */
  registry: string;
  mesh: string;
  /** When it registered, on the signaling server's clock. */
  connected_at: string;
}

/**
 * Who is registered where, asking every instance (one that does not answer holds nobody, and is
 * named in `unanswered`). In a cluster every instance lists every agent; the instance holding the
 * agent's socket is preferred.
 */
export async function registrations(
  instances: string[],
  o: { dispatcher?: Dispatcher | undefined; signal?: AbortSignal | undefined },
): Promise<{ on: Map<string, Registration>; unanswered: string[] }> {
  const on = new Map<string, Registration & { holds: boolean }>();
  const unanswered: string[] = [];
  await Promise.all(
    instances.map(async (base) => {
      const c = new SignalingClient(base, { timeoutMs: 2_000, ...o });
      let health: Awaited<ReturnType<SignalingClient['health']>>;
      let answer: Awaited<ReturnType<SignalingClient['agents']>>;
      try {
        [health, answer] = await Promise.all([c.health(), c.agents()]);
      } catch (err) {
        unanswered.push((err as Error).message);
        return;
      }
      const registry = health.cluster_id ?? c.url;
      for (const a of answer.agents) {
        const holds = a.instance_id === health.instance_id;
        if (on.get(a.agent_id)?.holds && !holds) continue;
        on.set(a.agent_id, { url: c.url, registry, mesh: a.mesh, connected_at: a.connected_at, holds });
      }
    }),
  );
  return { on: new Map([...on].map(([id, { holds: _, ...r }]) => [id, r])), unanswered };
}

/** Waits until every id in `ids` runs and is registered; returns the ids still missing. */
export async function waitRegistered(
  sup: Supervisor,
  ids: string[],
  instances: string[],
  timeoutMs: number,
  o: { clock: Clock; dispatcher?: Dispatcher | undefined; signal?: AbortSignal | undefined },
): Promise<string[]> {
  let missing = ids;
  await waitFor(
    async () => {
      const { on } = await registrations(instances, o);
      missing = ids.filter((id) => !on.has(id) || sup.running(agentProcessName(id)) === undefined);
      return missing.length === 0;
    },
    { timeoutMs, intervalMs: 100 },
    o.clock,
    o.signal,
  );
  return missing;
}
