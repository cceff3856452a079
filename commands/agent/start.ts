import path from 'node:path';
import type { CommandIo } from '../../src/cli/define.js';
import { durationFlag } from '../../src/cli/options.js';
import { loadCommandConfig } from '../../src/cli/tls.js';
import { loadAgentConfig } from '../../src/config/agent-config.js';
import { UsageError } from '../../src/errors.js';
import { runAgents } from '../../src/ops/agent/run.js';
import { agentSignalingUrls, loadFleet } from '../../src/ops/fleet/fleet.js';
import { resolveWitness } from '../../src/ops/shared.js';
import { resolveState } from '../../src/state/state-dir.js';
import type { AgentFlags } from './flags.js';

/** `agent run --config FILE.json`: the agent config's values under the flags (flags override it). */
export async function withAgentConfig(flags: AgentFlags, cwd: string): Promise<AgentFlags> {
  if (!flags.config?.endsWith('.json')) return flags;
  const ac = await loadAgentConfig(path.resolve(cwd, flags.config), flags.config);
  return {
    ...flags,
    config: undefined,
    id: flags.id ?? ac.agentId,
    key: flags.key ?? ac.keyFile,
    signaling: flags.signaling ?? ac.signaling?.join(','),
    stun: flags.stun ?? ac.stun?.join(','),
    turn: flags.turn ?? ac.turn?.join(','),
    icePolicy: flags.icePolicy ?? ac.icePolicy,
    mesh: flags.mesh ?? ac.mesh,
    loopback: flags.loopback ?? (ac.loopback || undefined),
  };
}

/**
 * Runs the agents `ids` until SIGTERM. The configuration is loaded here, not as a need: `agent run`'s
 * --config may be an agent config (JSON).
 */
export async function startAgents(
  flags: AgentFlags,
  ids: string[],
  keyFile: string | undefined,
  io: CommandIo,
): Promise<void> {
  const { ctx } = io;
  const loaded = await loadCommandConfig(ctx, flags);
  const out = io.output(flags);
  for (const w of loaded.warnings) out.warn(w);
  const policy = flags.icePolicy ?? loaded.config.iceTransportPolicy;
  if (policy !== 'all' && policy !== 'relay')
    throw new UsageError(`--ice-policy ${policy} is not all or relay`);
  io.claimSignal();
  const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
  const fleet = loadFleet(state, loaded, { signaling: flags.signaling ?? ctx.env.IFMESH_SIGNALING_URL });
  await runAgents(
    {
      ids,
      keyFile: keyFile ? path.resolve(ctx.cwd, keyFile) : undefined,
      config: resolveWitness(loaded, flags.witness, state),
      signalingUrls: agentSignalingUrls(fleet),
      // The state's own STUN/TURN (what `up` runs) when neither flags nor the config name any,
      // so no TURN password has to be on a command line.
      ice: {
        stun: flags.stun ?? (fleet.stun.join(',') || undefined),
        turn: flags.turn ?? (fleet.turn.join(',') || undefined),
        turnUser: flags.turnUser ?? fleet.turn_credentials?.username,
        turnPass: flags.turnPass ?? fleet.turn_credentials?.password,
      },
      icePolicy: policy,
      mesh: flags.mesh,
      loopbackOnly: Boolean(flags.loopback),
      iceAddresses: flags.iceAddress
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      rejectUnauthorized: !flags.insecure,
      ca: ctx.tls?.ca,
      heartbeatTimeoutMs: durationFlag(flags.heartbeatTimeout, '--heartbeat-timeout', { min: 50 }),
      healingBaseMs: durationFlag(flags.healingBase, '--healing-base', { min: 50 }),
      state,
      log: (line) => ctx.stderr.write(`${line}\n`),
    },
    ctx,
    (ready) => {
      if (flags.json) ctx.stdout.write(`${JSON.stringify(ready)}\n`);
      else ctx.stderr.write(`${ready.agents.length} agent(s) registered with ${ready.signaling}\n`);
    },
  );
}
