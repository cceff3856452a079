// One agent of `ifmesh load --signaling-only` on the wire: its socket, its key, its hello nonce
// and its registration, per the contract (CONTRACT.md §1: hello, register with a proof over
// `ifmesh-register:<nonce>:<agent_id>`, registered; relayed frames arrive with `from`).
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import WebSocket from 'ws';
import { toBase64url } from '../../crypto/ed25519.js';
import { registerChallenge } from '../../protocol/signaling.js';
import type { Clock } from '../../util/clock.js';
import type { SignalingWorkerSpec } from './signaling-load-worker.js';

export interface Agent {
  /** The agent's number in the run (from 0). */
  index: number;
  id: string;
  mesh: string;
  ws: WebSocket;
  key: KeyObject;
  publicKey: string;
  nonce: string | undefined;
  nonceAt: number;
  /** Resolves on the next hello (the first, or the answer to a challenge). */
  hello: Promise<string>;
  /** Resolves on `registered`; rejects on an error frame or a close before it. */
  registered: Promise<void>;
  isRegistered: boolean;
}

/** What a socket tells its process besides its own registration. */
export interface AgentEvents {
  /** Every socket as it is created, so that its process closes it whatever became of it. */
  created(ws: WebSocket): void;
  /** A relayed `offer`, whose sdp is the sender's performance.now(). */
  relayed(sdp: unknown): void;
  /** An error frame after registering (rate_limited, unknown_peer). */
  error(message: string): void;
  /** The server closed the socket after it registered. */
  dropped(): void;
}

/** Opens agent `index` of the run: resolves once the socket is open (its hello may come later). */
export function openAgent(
  spec: SignalingWorkerSpec,
  index: number,
  clock: Clock,
  on: AgentEvents,
): Promise<Agent> {
  return new Promise((resolve, reject) => {
    const from = spec.sourceAddresses[index % Math.max(1, spec.sourceAddresses.length)];
    const ws = new WebSocket(spec.signalingUrls[index % spec.signalingUrls.length]!, {
      perMessageDeflate: false,
      rejectUnauthorized: spec.rejectUnauthorized,
      ...(spec.ca ? { ca: spec.ca } : {}),
      ...(from ? { localAddress: from } : {}),
    });
    on.created(ws);
    // node:crypto generates and signs ~10× faster than noble: the generator must not be the bottleneck.
    const pair = generateKeyPairSync('ed25519');
    let gotHello: (nonce: string) => void = () => {};
    const arm = () => new Promise<string>((h) => (gotHello = h));
    let done: () => void = () => {};
    let refused: (e: Error) => void = () => {};
    const agent: Agent = {
      index,
      id: `load-${spec.run}-${index + 1}`,
      mesh: `load-${spec.run}-m${Math.floor(index / spec.meshSize)}`,
      ws,
      key: pair.privateKey,
      // The raw key is the tail of the DER SubjectPublicKeyInfo. (Not the JWK's `x`: on Node 20,
      // exporting a JWK while a garbage collection frees a key-generation job can deadlock.)
      publicKey: toBase64url(pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)),
      nonce: undefined,
      nonceAt: 0,
      hello: arm(),
      registered: new Promise((ok, fail) => {
        done = ok;
        refused = fail;
      }),
      isRegistered: false,
    };
    agent.registered.catch(() => {});
    ws.once('error', (err) => reject(err));
    ws.on('error', () => {});
    ws.once('open', () => resolve(agent));
    ws.once('close', (code) => {
      reject(new Error(`socket closed (${code}) before opening`));
      if (!agent.isRegistered) refused(new Error(`socket closed (${code}) before registering`));
      else on.dropped();
    });
    ws.on('message', (data) => {
      let f: { type: string; [k: string]: unknown };
      try {
        f = JSON.parse(data.toString());
      } catch {
        return;
      }
      if (f.type === 'offer') on.relayed(f.sdp);
      else if (f.type === 'hello') {
        agent.nonce = String(f.nonce);
        agent.nonceAt = clock.now();
        const resolveHello = gotHello;
        agent.hello = arm();
        resolveHello(agent.nonce);
      } else if (f.type === 'registered') {
        agent.isRegistered = true;
        done();
      } else if (f.type === 'error') {
        const e = `${f.code}: ${f.message}`;
        if (agent.isRegistered) on.error(e);
        else refused(new Error(e));
      }
    });
  });
}

/**
 * Opening tens of thousands of sockets on a loaded machine outlasts a nonce's 30 s: an old one is
 * renewed first (the server may take seconds to reach the last frame of a burst). A socket closed
 * meanwhile gives up the wait (its `registered` has failed).
 */
export async function registerFrame(a: Agent, spec: SignalingWorkerSpec, clock: Clock): Promise<string> {
  let nonce = a.nonce ?? (await Promise.race([a.hello, a.registered.then(() => '')]));
  if (
    spec.nonceRenewMs > 0 &&
    clock.now() - a.nonceAt >= spec.nonceRenewMs &&
    a.ws.readyState === WebSocket.OPEN
  ) {
    const next = a.hello;
    a.ws.send(JSON.stringify({ type: 'challenge' }));
    nonce = await Promise.race([next, a.registered.then(() => nonce)]);
  }
  return JSON.stringify({
    type: 'register',
    agent_id: a.id,
    public_key: a.publicKey,
    signature: sign(null, registerChallenge(nonce, a.id), a.key).toString('base64url'),
    metadata: { mesh: a.mesh },
  });
}
