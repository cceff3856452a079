// `up`'s agents: one process per agent, started like a deployment's (src/ops/rollout/agents.ts) from
// configs `up` writes in <state>/agents/, and recorded as the first release, so canary and rollback
// work on the local stack exactly as on a deployed fleet.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { newIdentity, writeIdentity } from '../../crypto/key-file.js';
import { packageRoot } from '../../paths.js';
import { writeFileWhole } from '../../state/json-file.js';
import type { StackFile } from '../../state/stack-plan.js';
import type { StateDir } from '../../state/state-dir.js';
import { type AgentSpec, currentRelease, operator, recordRelease } from '../deploy/releases.js';
import type { Supervisor } from '../fleet/supervisor.js';
import { agentProcessName, startAgent } from '../rollout/agents.js';
import type { OpContext } from '../shared.js';

/** Writes <state>/agents/<id>.json and its key (0600) unless they exist; returns the config's path. */
async function agentConfig(state: StateDir, id: string, signaling: string[]): Promise<string> {
  const dir = state.agents;
  const file = state.agentConfigFile(id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!existsSync(path.join(dir, `${id}.key`))) await writeIdentity(dir, newIdentity(id), false);
  const doc = `${JSON.stringify({ agent_id: id, key: `${id}.key`, signaling, loopback: true }, null, 2)}\n`;
  if (!existsSync(file) || readFileSync(file, 'utf8') !== doc) writeFileWhole(file, doc);
  return file;
}

export interface UpAgents {
  specs: AgentSpec[];
  started: string[];
  already: string[];
}

/**
 * Starts every agent that does not run, on the current release's spec for it when there is one
 * (a canary may have moved it), else on `up`'s. STUN, TURN and the witness come from the state's
 * fleet view when the agent starts, so no secret is in a spec, a config or a command line.
 */
export async function ensureUpAgents(
  sup: Supervisor,
  o: { ids: string[]; signaling: string[] },
  _ctx: Pick<OpContext, 'clock'>,
): Promise<UpAgents> {
  const current = await currentRelease(sup.state);
  const out: UpAgents = { specs: [], started: [], already: [] };
  for (const id of o.ids) {
    const released = current?.agent_specs?.find((a) => a.agent_id === id);
    // The stack's signaling as it runs now: `up` after `down` plans new ports, and an agent started
    // on the release's URLs would dial the previous stack's (every agent "did not register").
    if (released?.config === sup.state.agentConfigFile(id)) await agentConfig(sup.state, id, o.signaling);
    const spec: AgentSpec = released
      ? { ...released, signaling: o.signaling }
      : {
          agent_id: id,
          config: await agentConfig(sup.state, id, o.signaling),
          signaling: o.signaling,
          env: {},
          cwd: sup.state.root,
        };
    out.specs.push(spec);
    const name = agentProcessName(id);
    if (sup.running(name) !== undefined) out.already.push(name);
    else {
      startAgent(sup, spec);
      out.started.push(name);
    }
  }
  return out;
}

/** Records `up`'s agents as a release, unless the current release already runs exactly these agents. */
export async function recordUpRelease(
  state: StateDir,
  specs: AgentSpec[],
  s: StackFile,
  ctx: Pick<OpContext, 'clock' | 'env'>,
): Promise<{ id: string; recorded: boolean }> {
  const current = await currentRelease(state);
  const ids = specs.map((a) => a.agent_id).sort();
  // The same agents on the same signaling: nothing new. New ports (up after down) are a new release,
  // so a canary or rollback starting from the current release starts agents that reach this stack.
  const dials = (list: AgentSpec[] | undefined) =>
    JSON.stringify((list ?? []).map((a) => [a.agent_id, a.signaling]).sort());
  if (
    current &&
    JSON.stringify([...current.agents].sort()) === JSON.stringify(ids) &&
    (current.agent_specs === undefined || dials(current.agent_specs) === dials(specs))
  )
    return { id: current.id, recorded: false };
  const version = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8'))
    .version as string;
  const at = new Date(ctx.clock.now()).toISOString();
  const id = `${at.replace(/[:.]/g, '-')}-up`;
  await recordRelease(state, {
    id,
    deployment_id: 'up',
    ref: version,
    config_hash: 'up',
    created_at: at,
    processes: s.signaling.map((x) => ({ name: x.name, port: x.port, role: 'signaling' as const })),
    agents: ids,
    version,
    who: operator(ctx.env),
    outcome: 'deployed',
    agent_specs: specs,
  });
  return { id, recorded: true };
}
