import type { StateDir } from '../../state/state-dir.js';
import { currentRelease, listReleases } from '../deploy/releases.js';

/** `releases`: the recorded history, newest first, without the agents' start specs (env may hold secrets). */
export async function releaseHistory(state: StateDir) {
  const cur = await currentRelease(state);
  const all = await listReleases(state);
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
