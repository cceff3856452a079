import { currentRelease, listReleases } from '../deploy/releases.js';

/** `releases`: the recorded history, newest first, without the agents' start specs (env may hold secrets). */
export async function releaseHistory(stateDir: string) {
  const cur = await currentRelease(stateDir);
  const all = await listReleases(stateDir);
  return {
    current: cur?.id ?? null,
    releases: all.reverse().map((r) => ({
      id: r.id,
      ref: r.ref,
      version: r.version ?? null,
      config_hash: r.config_hash,
      deployment_id: r.deployment_id,
      created_at: r.created_at,
      who: r.who ?? null,
      outcome: r.outcome ?? null,
      agents: r.agents,
      current: r.id === cur?.id,
    })),
  };
}
