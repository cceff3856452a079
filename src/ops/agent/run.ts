import { MeshAgent } from '../../agent/agent.js';
import type { MeshConfig } from '../../config/load.js';
import { resolveStateDir } from '../../config/state.js';
import { generateKeyPair, toBase64url } from '../../crypto/ed25519.js';
import { readIdentity } from '../../crypto/key-file.js';
import { UnreachableError } from '../../errors.js';
import { waitFor, within } from '../../util/wait.js';
import { openWitness } from '../events.js';
import { type OpContext, untilAborted } from '../shared.js';
import { type IceFlags, iceServers } from './ice.js';

export interface RunAgentsOptions {
  ids: string[];
  /** One agent's identity file; a swarm generates throw-away identities. */
  keyFile: string | undefined;
  config: MeshConfig;
  signalingUrls: string[];
  ice: IceFlags;
  icePolicy: 'all' | 'relay';
  mesh: string | undefined;
  loopbackOnly: boolean;
  rejectUnauthorized: boolean;
  heartbeatTimeoutMs: number;
  healingBaseMs: number;
  stateDir: string | undefined;
  log: (line: string) => void;
}

export interface AgentsReady {
  agents: { agent_id: string; public_key: string }[];
  signaling: string;
  pid: number;
}

/** Runs agents until `signal`, then says goodbye on every channel and closes everything. */
export async function runAgents(
  o: RunAgentsOptions,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'env' | 'cwd'>,
  onReady: (r: AgentsReady) => void,
): Promise<void> {
  const stateDir = resolveStateDir(ctx.cwd, ctx.env, o.stateDir);
  const servers = iceServers(o.config, o.ice);
  const witness = openWitness(
    { url: o.config.witnessUrl, apiKey: o.config.witnessApiKey, stateDir },
    o.ids.length === 1 ? `agent-${o.ids[0]}` : `swarm-${process.pid}`,
    ctx,
    {
      onKeyChanged: (change) => {
        o.log(
          JSON.stringify({
            time: new Date().toISOString(),
            level: 'error',
            msg: 'witness_key_changed',
            ...change,
            hint: `ifmesh witness trust ${change.url}`,
          }),
        );
        agents[0]?.noteWitnessKeyChanged();
      },
    },
  );
  const identity = o.keyFile ? await readIdentity(o.keyFile) : undefined;
  const agents = o.ids.map(
    (id) =>
      new MeshAgent({
        agentId: id,
        identity: identity ?? generateKeyPair(),
        signalingUrls: o.signalingUrls,
        iceServers: servers,
        iceTransportPolicy: o.icePolicy,
        loopbackOnly: o.loopbackOnly,
        mesh: o.mesh,
        rejectUnauthorized: o.rejectUnauthorized,
        turnFallbackTimeoutMs: o.config.turnFallbackTimeoutMs,
        heartbeatTimeoutMs: o.heartbeatTimeoutMs,
        healingBaseMs: o.healingBaseMs,
        events: witness,
        clock: ctx.clock,
      }),
  );
  try {
    for (const a of agents) a.start();
    const connected = await waitFor(
      () => ctx.signal.aborted || agents.every((a) => a.signalingUrl),
      { timeoutMs: 30_000, intervalMs: 20 },
      ctx.clock,
    );
    if (!connected)
      throw new UnreachableError(
        `no signaling server answered at ${o.signalingUrls.join(', ')}`,
        'check --signaling',
      );
    if (!ctx.signal.aborted) {
      onReady({
        agents: agents.map((a) => ({ agent_id: a.id, public_key: toBase64url(a.publicKey) })),
        signaling: agents[0]!.signalingUrl!,
        pid: process.pid,
      });
    }
    await untilAborted(ctx.signal);
  } finally {
    // Exit within 2 s of SIGTERM: each agent's stop is bounded, and so is the witness client's last
    // flush (events it could not deliver stay in the spool for the next run).
    await Promise.all(agents.map((a) => a.stop()));
    await within(witness?.close(500), 600, ctx.clock);
  }
}
