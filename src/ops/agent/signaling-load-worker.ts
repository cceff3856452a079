// One process of `ifmesh load --signaling-only`: its share of the run's agents open WebSockets to
// the signaling instances (socket i to URL i mod n, from source address i mod m, so tens of
// thousands of sockets to one port do not run out of ephemeral ports on one address), register with
// Ed25519 proofs, then hold — or relay `offer` frames through the server at a rate, each pair a
// sender and a receiver of this process, so a one-way latency is measured on one timer.
//
// Latencies use performance.now(): they are sub-millisecond on loopback, finer than Clock.now()'s
// milliseconds. Pacing and waiting go through the injected clock.
import WebSocket from 'ws';
import { formatDuration } from '../../ui/units.js';
import { type Clock, systemClock } from '../../util/clock.js';
import { waitFor, within } from '../../util/wait.js';
import type { WorkerTick } from './load.js';
import { type Agent, type AgentEvents, openAgent, registerFrame } from './signaling-load-socket.js';

export interface SignalingWorkerSpec {
  mode: 'signaling';
  run: string;
  /** This process holds the run's agents from..to-1 (`from` even: a pair never spans two processes). */
  from: number;
  to: number;
  signalingUrls: string[];
  /** Local addresses to connect from, round robin; empty: the system's choice. */
  sourceAddresses: string[];
  rejectUnauthorized: boolean;
  ca?: string[] | undefined;
  /** Sockets opening at once in this process. */
  concurrency: number;
  /** Registrations outstanding at once; 0: every frame signed first, then all sent at once. */
  inflight: number;
  /** Agents per mesh: a registration then costs O(mesh), as in a deployment of many small meshes. */
  meshSize: number;
  /**
   * A nonce older than this is renewed with {"type":"challenge"} before it is signed (the server
   * refuses one older than 30 s); 0: never (a server whose nonces do not expire: the benchmarks' raw relay).
   */
  nonceRenewMs: number;
  /** Bound on opening the sockets, and again on registering them. */
  formTimeoutMs: number;
  durationMs: number;
  /** Relayed messages per second on each pair (agents 2k → 2k+1); 0: hold only. */
  rate: number;
  /** A relayed message not arrived this long after the last was sent is lost. */
  pingTimeoutMs: number;
}

export interface SignalingWorkerResult {
  agents: number;
  connected: number;
  registered: number;
  /** From the first socket opening to the last hello, and from the first register frame to the last answer. */
  connect_ms: number;
  register_ms: number;
  /** Each registration's time from its frame leaving to `registered` (0.1 ms). */
  registration_lat: number[];
  pairs: number;
  sent: number;
  delivered: number;
  /** One-way relay latencies (0.01 ms). */
  relay_lat: number[];
  /** Seconds from the first relayed message to the last arrival (or the drain's end). */
  elapsed_s: number;
  /** Sockets the server closed while they were held. */
  disconnected: number;
  errors: string[];
}

export interface SignalingWorkerHooks {
  clock?: Clock;
  signal?: AbortSignal | undefined;
  /** Every socket of this process is open and greeted; resolves when registrations may start. */
  ready(connectMs: number): Promise<void>;
  /** This process's agents are registered; resolves when holding (or relaying) may start. */
  registered?(r: { registered: number; register_ms: number }): Promise<void>;
  tick(t: WorkerTick): void;
  /** This process is done; resolves when every process is, so no agent leaves a pair mid-run. */
  finished(): Promise<void>;
}

/** A share's result before it has done anything (and what a share that died reports, with its error). */
export function emptyResult(agents: number, errors: string[] = []): SignalingWorkerResult {
  return {
    agents,
    connected: 0,
    registered: 0,
    connect_ms: 0,
    register_ms: 0,
    registration_lat: [],
    pairs: 0,
    sent: 0,
    delivered: 0,
    relay_lat: [],
    elapsed_s: 0,
    disconnected: 0,
    errors,
  };
}

export async function runSignalingWorker(
  spec: SignalingWorkerSpec,
  hooks: SignalingWorkerHooks,
): Promise<SignalingWorkerResult> {
  const clock = hooks.clock ?? systemClock;
  const n = spec.to - spec.from;
  const agents: Agent[] = [];
  const sockets: WebSocket[] = [];
  const errors = new Set<string>();
  const r = emptyResult(n);
  let leaving = false;
  const on: AgentEvents = {
    created: (ws) => sockets.push(ws),
    relayed: (sdp) => {
      const at = Number(sdp);
      if (!Number.isFinite(at)) return;
      r.delivered += 1;
      r.relay_lat.push(Math.round((performance.now() - at) * 100) / 100);
    },
    error: (e) => errors.add(e),
    dropped: () => {
      if (!leaving) r.disconnected += 1;
    },
  };
  const t0 = performance.now();
  try {
    // Open every socket and take its hello before any registers, so the registration rate is the server's.
    let next = 0;
    let opening = true;
    const opened = Promise.all(
      Array.from({ length: Math.min(n, spec.concurrency) }, async () => {
        while (next < n && opening && !hooks.signal?.aborted) {
          const i = next++;
          try {
            const agent = await openAgent(spec, spec.from + i, clock, on);
            if (agent.nonce === undefined) await agent.hello;
            if (opening) agents.push(agent);
          } catch (err) {
            errors.add(`connect: ${(err as Error).message}`);
          }
        }
      }),
    );
    if (!(await within(opened, spec.formTimeoutMs, clock)))
      errors.add(`${n - agents.length} of ${n} sockets not open after ${formatDuration(spec.formTimeoutMs)}`);
    // A socket that opens after the bound is not used (the finally closes it).
    opening = false;
    const ready = [...agents];
    r.connected = ready.length;
    r.connect_ms = performance.now() - t0;
    await hooks.ready(r.connect_ms);

    await register(ready, spec, clock, r, errors);
    await hooks.registered?.({ registered: r.registered, register_ms: r.register_ms });

    await relay(ready, spec, hooks, clock, r);
    await hooks.finished();
  } catch (err) {
    errors.add((err as Error).message);
  } finally {
    leaving = true;
    // No close handshake: tens of thousands of sockets go at once, as when a process exits.
    for (const ws of sockets) ws.terminate();
  }
  r.errors = [...errors].slice(0, 10);
  return r;
}

async function register(
  agents: Agent[],
  spec: SignalingWorkerSpec,
  clock: Clock,
  r: SignalingWorkerResult,
  errors: Set<string>,
): Promise<void> {
  // All at once: every frame is signed before the first leaves, so the rate is the server's.
  const frames = spec.inflight ? [] : await Promise.all(agents.map((a) => registerFrame(a, spec, clock)));
  const t1 = performance.now();
  let sent = 0;
  const send = async (i: number) => {
    const a = agents[i]!;
    const frame = frames[i] ?? (await registerFrame(a, spec, clock));
    const at = performance.now();
    a.ws.send(frame);
    try {
      await a.registered;
      r.registration_lat.push(Math.round((performance.now() - at) * 10) / 10);
    } catch (err) {
      errors.add(`register: ${(err as Error).message}`);
    }
  };
  const registering = Promise.all(
    Array.from({ length: Math.min(agents.length, spec.inflight || agents.length) }, async () => {
      while (sent < agents.length) await send(sent++);
    }),
  );
  if (!(await within(registering, spec.formTimeoutMs, clock)))
    errors.add(`registrations unanswered after ${formatDuration(spec.formTimeoutMs)}`);
  r.register_ms = performance.now() - t1;
  r.registered = agents.filter((a) => a.isRegistered).length;
}

/** Hold for the duration, or relay: message k goes at start + k / (rate × pairs), pairs in turn. */
async function relay(
  agents: Agent[],
  spec: SignalingWorkerSpec,
  hooks: SignalingWorkerHooks,
  clock: Clock,
  r: SignalingWorkerResult,
): Promise<void> {
  const byIndex = new Map(agents.map((a) => [a.index, a]));
  const pairs: Array<[Agent, Agent]> = [];
  for (let i = spec.from; i + 1 < spec.to; i += 2) {
    const [s, d] = [byIndex.get(i), byIndex.get(i + 1)];
    if (s?.isRegistered && d?.isRegistered) pairs.push([s, d]);
  }
  r.pairs = pairs.length;
  if (spec.rate === 0 || pairs.length === 0) {
    await clock.sleep(spec.durationMs, hooks.signal).catch(() => {});
    return;
  }
  const stopTicks = new AbortController();
  const ticker = (async () => {
    while (!stopTicks.signal.aborted && !hooks.signal?.aborted) {
      await clock.sleep(1_000, stopTicks.signal).catch(() => {});
      if (!stopTicks.signal.aborted) hooks.tick({ sent: r.sent, delivered: r.delivered });
    }
  })();
  const total = Math.max(1, Math.round((spec.durationMs / 1000) * spec.rate)) * pairs.length;
  const gapMs = 1000 / (spec.rate * pairs.length);
  const start = clock.now();
  const t0 = performance.now();
  for (let k = 0; k < total && !hooks.signal?.aborted; k++) {
    const wait = start + k * gapMs - clock.now();
    if (wait > 1) await clock.sleep(wait, hooks.signal).catch(() => {});
    const [from, to] = pairs[k % pairs.length]!;
    // A sender the server closed still counts its messages: they are lost.
    r.sent += 1;
    if (from.ws.readyState === WebSocket.OPEN)
      from.ws.send(JSON.stringify({ type: 'offer', to: to.id, sdp: String(performance.now()) }));
  }
  await waitFor(() => r.delivered >= r.sent, { timeoutMs: spec.pingTimeoutMs, intervalMs: 20 }, clock).catch(
    () => false,
  );
  r.elapsed_s = (performance.now() - t0) / 1000;
  stopTicks.abort();
  await ticker;
}
