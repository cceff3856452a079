// `ifmesh verify` on a resolved fleet: the signed message exchange alone (--message-exchange), or the
// four steps of the deployment check with the exchange as the fourth, logged to the witness.
import type { LoadedConfig } from '../../config/load.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import { type ExchangeOptions, type ExchangeReport, messageExchange } from '../agent/exchange.js';
import { iceServers } from '../agent/ice.js';
import { currentRelease } from '../deploy/releases.js';
import { openWitness } from '../events.js';
import { agentSignalingUrls, type Fleet } from '../fleet/fleet.js';
import type { OpContext } from '../shared.js';
import { STEP_TITLES, type VerifyReport, verifyDeployment } from './deployment.js';

export interface FleetVerifyOptions {
  loaded: LoadedConfig;
  state: StateDir;
  fleet: Fleet;
  agents: number;
  messages: number;
  formTimeoutMs: number;
  maxRttP95Ms: number;
  stun: string | undefined;
  loopback: boolean;
  insecure: boolean;
  /** A line of the exchange's progress. */
  onInfo(line: string): void;
}

function exchangeOn(o: FleetVerifyOptions, ctx: OpContext) {
  return (x: Pick<ExchangeOptions, 'events' | 'witness'>) =>
    messageExchange({
      ...x,
      clock: ctx.clock,
      signalingUrls: agentSignalingUrls(o.fleet),
      iceServers: iceServers(o.loaded.config, { stun: o.stun ?? o.fleet.stun[0], turn: '' }),
      agents: o.agents,
      messages: o.messages,
      loopbackOnly: o.loopback,
      formTimeoutMs: o.formTimeoutMs,
      rejectUnauthorized: !o.insecure,
      ca: ctx.tls?.ca,
      dispatcher: ctx.dispatcher,
      onProgress: o.onInfo,
      maxRttP95Ms: o.maxRttP95Ms,
    });
}

/** `verify --message-exchange`: temporary agents exchange signed pings over every pair. */
export function verifyExchange(o: FleetVerifyOptions, ctx: OpContext): Promise<ExchangeReport> {
  const w = { url: o.fleet.witness.url, apiKey: o.fleet.witness.api_key };
  return exchangeOn(o, ctx)({ witness: w.apiKey ? { ...w, state: o.state } : undefined });
}

/** `verify`: signaling health, agents, connections, then the exchange; each step on `progress`. */
export async function verifyFleet(
  o: FleetVerifyOptions & {
    deploymentId: string | undefined;
    retries: number;
    intervalMs: number;
    /** Made once the witness is open (its warning comes first). */
    progress: () => Promise<Progress>;
    onWarn(message: string): void;
  },
  ctx: OpContext,
): Promise<VerifyReport> {
  const w = { url: o.fleet.witness.url, apiKey: o.fleet.witness.api_key };
  const witness = openWitness({ ...w, state: o.state }, `verify-${o.deploymentId ?? 'adhoc'}`, ctx);
  if (!witness) o.onWarn('IF_WITNESS_API_KEY is not set: this verification is not logged to the witness');
  const exchange = exchangeOn(o, ctx);
  // A release record that no longer reads does not stop a verification: it checks the runbook's bar.
  const release = await currentRelease(o.state).catch((err: unknown) => {
    o.onWarn(
      `the current release could not be read, so deployed agents are not checked one by one: ${(err as Error).message}`,
    );
    return undefined;
  });
  const progress = await o.progress();
  return verifyDeployment(ctx, {
    // Every instance and the front door: each must answer /health.
    signalingHttp: [
      ...o.fleet.signaling.map((x) => x.http),
      ...(o.fleet.front_door ? [o.fleet.front_door.http] : []),
    ],
    deploymentId: o.deploymentId,
    retries: o.retries,
    intervalMs: o.intervalMs,
    exchange: (events) => exchange({ events }),
    witness,
    deployedAgents: release?.agents.length ? { release: release.id, agents: release.agents } : undefined,
    onStep: (s) => {
      if (s.status === 'skipped') return;
      progress.step(STEP_TITLES[s.name], s.status, 'detail' in s ? s.detail : undefined);
    },
  })
    .finally(() => progress.close())
    .finally(() => witness?.close());
}
