import { MeshAgent } from '../../agent/agent.js';
import type { MeshConfig } from '../../config/load.js';
import { type KeyPair, toBase64url } from '../../crypto/ed25519.js';
import { loadOrCreateIdentity, readIdentity, writeRotatedIdentity } from '../../crypto/key-file.js';
import { UnreachableError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import { waitFor, within } from '../../util/wait.js';
import { openWitness } from '../events.js';
import { type OpContext, untilAborted } from '../shared.js';
import { type IceFlags, iceServers, resolveIceAddresses } from './ice.js';

export interface RunAgentsOptions {
  ids: string[];
  /** One agent's identity file; a swarm keeps one per agent in the state directory. */
  keyFile: string | undefined;
  config: MeshConfig;
  signalingUrls: string[];
  ice: IceFlags;
  icePolicy: 'all' | 'relay';
  mesh: string | undefined;
  loopbackOnly: boolean;
  /** --ice-address entries (addresses or interface names); undefined: AGENT_ICE_ADDRESSES. */
  iceAddresses?: string[] | undefined;
  rejectUnauthorized: boolean;
  /** CAs for wss:// and the witness's https:// (ctx.tls.ca); default: the system's. */
  ca?: string[] | undefined;
  heartbeatTimeoutMs: number;
  healingBaseMs: number;
  state: StateDir;
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
  ctx: Pick<OpContext, 'clock' | 'signal' | 'env' | 'cwd'> & Partial<Pick<OpContext, 'dispatcher'>>,
  onReady: (r: AgentsReady) => void,
): Promise<void> {
  const { state } = o;
  const servers = iceServers(o.config, o.ice);
  const addresses = o.loopbackOnly
    ? undefined
    : resolveIceAddresses(o.iceAddresses ?? o.config.agentIceAddresses);
  const witness = openWitness(
    { url: o.config.witnessUrl, apiKey: o.config.witnessApiKey, state },
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
  // Each agent's identity file: the one given, or (a swarm) one per agent id under the state
  // directory, made on first use. Signaling binds an id to its key for good, so a swarm restarted
  // with fresh keys under the same ids would be refused (id_key_mismatch).
  const keyFiles = o.ids.map((id) => o.keyFile ?? state.swarmKeyFile(id));
  const identities = await Promise.all(
    o.ids.map((id, i) => (o.keyFile ? readIdentity(keyFiles[i]!) : loadOrCreateIdentity(keyFiles[i]!, id))),
  );
  // A rotated key goes to the key file before the agent uses it, so a restart comes back with it.
  const persistRotation =
    (keyFile: string) => async (next: KeyPair, proof: Parameters<typeof writeRotatedIdentity>[2]) => {
      const r = await writeRotatedIdentity(keyFile, next, proof);
      o.log(
        JSON.stringify({
          time: new Date(ctx.clock.now()).toISOString(),
          level: 'info',
          msg: 'key_rotated',
          key_file: r.keyPath,
          previous_key_file: r.backupPath,
        }),
      );
    };
  const agents = o.ids.map(
    (id, i) =>
      new MeshAgent({
        agentId: id,
        identity: identities[i]!,
        signalingUrls: o.signalingUrls,
        iceServers: servers,
        iceTransportPolicy: o.icePolicy,
        loopbackOnly: o.loopbackOnly,
        iceAddresses: addresses,
        mesh: o.mesh,
        rejectUnauthorized: o.rejectUnauthorized,
        ca: o.ca,
        turnFallbackTimeoutMs: o.config.turnFallbackTimeoutMs,
        backoffMaxMs: o.config.agentReconnectMaxMs,
        heartbeatTimeoutMs: o.heartbeatTimeoutMs,
        healingBaseMs: o.healingBaseMs,
        // the lab's test hook: issue 26's failure back, to prove fallback and healing alone
        relayReach: ctx.env.IFMESH_TEST_NO_RELAY_REACH !== '1',
        events: witness,
        log: o.log,
        clock: ctx.clock,
        persistRotation: persistRotation(keyFiles[i]!),
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
