// A release record as deploy writes it (src/ops/deploy/releases.ts), written straight into a state
// directory: for tests about what reads releases (status, rotate-keys, failover), not about deploy.
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AgentSpec, Release } from '../../src/ops/deploy/releases.js';
import { openStateDir } from '../../src/state/state-dir.js';

/** Writes release `id` deploying `agents` (with `agent_specs`, when given); `current` makes it the running one. */
export function writeReleaseRecord(
  stateDir: string,
  r: { id: string; agents: string[]; agent_specs?: AgentSpec[] },
  { current = true } = {},
): void {
  const p = openStateDir(stateDir);
  mkdirSync(p.releases, { recursive: true });
  const rec: Release = {
    id: r.id,
    deployment_id: r.id,
    ref: r.id,
    config_hash: 'h',
    created_at: new Date().toISOString(),
    processes: [],
    agents: r.agents,
    ...(r.agent_specs ? { agent_specs: r.agent_specs } : {}),
  };
  writeFileSync(p.releaseFile(r.id), JSON.stringify(rec));
  if (current) writeFileSync(p.currentRelease, `${r.id}\n`);
}
