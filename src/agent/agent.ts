import './werift-dtls-fix.js';
import './werift-turn-fix.js';
import { RTCPeerConnection } from 'werift';
import { parseIceUrl } from '../config/ice-url.js';
import {
  createSigner,
  generateKeyPair,
  type KeyPair,
  keyId,
  type Signer,
  toBase64url,
} from '../crypto/ed25519.js';
import { MessageVerifier } from '../crypto/ifmessage.js';
import { sharedVerifyPool, type VerifyPool } from '../crypto/verify-pool.js';
import type { IFMessage } from '../protocol/ifmessage.js';
import { type RotationProof, rotationStatement } from '../protocol/signaling.js';
import type { WitnessEvent } from '../protocol/witness.js';
import { formatDuration } from '../ui/units.js';
import { type Clock, systemClock, type TimerHandle } from '../util/clock.js';
import { waitFor } from '../util/wait.js';
import { AgentLog } from './agent-log.js';
import { type LinkIce, PeerLink } from './peer-link.js';
import { acceptPeerKey } from './pins.js';
import { relayPairFilter } from './relay-reach.js';
import { SignalingClient, type SignalingIdentity } from './signaling-client.js';
import { TurnPool } from './turn-pool.js';

/** Why a link closed when the peer lost it, not when either side chose to end it. */
const LOST_LINK = /^(peer said bye: heartbeat timeout|connection failed|connection closed|channel closed)$/;

export interface IceServer {
  urls: string;
  username?: string;
  credential?: string;
}

export interface AgentOptions {
  agentId: string;
  identity: SignalingIdentity;
  signalingUrls: string[];
  /** Always give werift a reachable STUN server: without one it tries Google's and stalls 5 s. */
  iceServers: IceServer[];
  iceTransportPolicy?: 'all' | 'relay';
  /** Gather only 127.0.0.1 host candidates (tests and single-machine meshes). */
  loopbackOnly?: boolean;
  /** Gather host candidates on these IPv4 addresses only (AGENT_ICE_ADDRESSES); unset: every interface. */
  iceAddresses?: string[] | undefined;
  mesh?: string | undefined;
  failoverTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  statsIntervalMs?: number;
  memoryIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  healingBaseMs?: number;
  /** No direct path by then: retry relay-only through TURN (TURN_FALLBACK_TIMEOUT_MS). */
  turnFallbackTimeoutMs?: number;
  turnHealthIntervalMs?: number;
  /**
   * Test hook (IFMESH_TEST_NO_RELAY_REACH=1): false turns off the relay-reach filter
   * (src/agent/relay-reach.ts) on policy-"all" connections, reproducing issue 26's symmetric-NAT
   * failure there, so the lab proves the relay-only TURN fallback and healing rescue the pair. The
   * relay-only attempts keep it: without it a relay-only offerer pairs its relay with the peer's
   * private host, coturn drops the allocation, and no fallback round can connect (measured in the
   * lab: six rounds over 90 s). Never set in production.
   */
  relayReach?: boolean;
  /** Extra werift RTCPeerConnection settings (e.g. icePortRange, iceFilterCandidatePair). */
  peerConfig?: Record<string, unknown>;
  healingAttempts?: number;
  rejectUnauthorized?: boolean;
  /** CAs for wss:// (ctx.tls.ca: the system's plus --ca / IFMESH_CA_FILE). */
  ca?: string[] | undefined;
  events?: { log(e: WitnessEvent): void } | undefined;
  /**
   * The agent's own log (its stderr under a supervisor: `ifmesh logs deploy-agent-<id>`): one line
   * per lifecycle event, repeats sampled (agent-log.ts). Unset: nothing is written.
   */
  log?: ((line: string) => void) | undefined;
  /** Heartbeats, partition detection, healing backoff and message timestamps run on it. */
  clock?: Clock;
  /**
   * Makes a rotated key durable before the agent uses it (the key file: `ifmesh agent run --key`).
   * If it throws, the rotation is abandoned and the agent keeps its key. Without it the new key
   * lives in memory only (throw-away identities: tests, verify's temporary agents).
   */
  persistRotation?: (next: KeyPair, proof: RotationProof) => Promise<void>;
  /** Nonces remembered per peer for replay detection (default 100,000). */
  replayCapacity?: number;
  /**
   * Verifies signatures on worker threads while links are busy (default: the process's shared pool,
   * sized by IFMESH_VERIFY_WORKERS); false verifies every message inline.
   */
  verifyPool?: VerifyPool | false;
  onMessage?: (from: string, message: IFMessage) => void;
}

export interface AgentCounters {
  messages_sent: number;
  messages_received: number;
  signature_failures: number;
  message_errors: number;
  dtls_failures: number;
  /** Times the witness this agent's events go to presented a key other than the one held. */
  witness_key_changed?: number;
  /** Times signaling announced a key for a peer other than the one pinned, without a rotation from it. */
  peer_key_mismatches: number;
}

/** A mesh agent: registers with signaling, keeps a signed DataChannel to every peer, reports. */
export class MeshAgent {
  readonly links = new Map<string, PeerLink>();
  /**
   * Each peer's key, pinned at first sight: signaling may later announce another key for the id only
   * with a chain of rotations signed from the pinned one (pins.ts); anything else is refused.
   */
  readonly keys = new Map<string, Uint8Array>();
  readonly counters: AgentCounters = {
    messages_sent: 0,
    messages_received: 0,
    signature_failures: 0,
    message_errors: 0,
    dtls_failures: 0,
    peer_key_mismatches: 0,
  };
  private identity: SignalingIdentity;
  private signer: Signer;
  private readonly signaling: SignalingClient;
  private readonly verifier: MessageVerifier;
  private readonly timers: (() => void)[] = [];
  /** Peers being healed: the pending retry, and whether this side offers (see heal). */
  private readonly healing = new Map<string, { timer: TimerHandle; offers: boolean }>();
  /**
   * Peers a connection attempt (connectTo: direct, then each relay) is running for. A healing retry
   * that comes due meanwhile leaves it to finish: on a slow path (hundreds of ms of RTT, loss) setting
   * up a pair takes longer than the first backoff steps, and each new offer would cut the last short.
   */
  private readonly connecting = new Map<string, number>();
  /** Peers signaling said left (agent-left) and that have not registered again: nothing to heal. */
  private readonly departed = new Set<string>();
  /** Peers whose healing gave up: their connection is reported failed, not merely closed. */
  private readonly failedPeers = new Set<string>();
  private iceServers: IceServer[];
  private turn: TurnPool;
  /** The configured STUN servers' health (pushed configuration changes only TURN servers). */
  private readonly stunPool: TurnPool;
  /** The TURN server each connection was given: what a relayed link names in turn_connection_detected. */
  private readonly turnOf = new WeakMap<RTCPeerConnection, string>();
  private stopped = false;
  bandwidth: { enableBandwidthAdaptation: boolean; maxBitrateMbps: number | null } | undefined;
  /** Bytes the agent may still send this instant under a pushed bitrate cap (a token bucket). */
  private budget = { tokens: 0, at: 0 };
  private lastBytes = { total: 0, at: 0 };
  private readonly clock: Clock;
  private readonly now: () => number;
  private readonly lines: AgentLog | undefined;

  constructor(readonly o: AgentOptions) {
    this.clock = o.clock ?? systemClock;
    this.now = () => this.clock.now();
    this.lines = o.log ? new AgentLog({ agentId: o.agentId, clock: this.clock, write: o.log }) : undefined;
    this.identity = o.identity;
    this.signer = createSigner(o.identity.seed);
    this.iceServers = o.iceServers;
    this.turn = this.newTurnPool();
    this.stunPool = new TurnPool({
      kind: 'stun',
      servers: o.iceServers.filter((s) => /^stuns?:/.test(s.urls)),
      checkIntervalMs: o.turnHealthIntervalMs,
      onEvent: (name, metadata) => this.event(name, metadata),
    });
    this.verifier = new MessageVerifier({ now: this.now, nonceCapacity: o.replayCapacity });
    this.signaling = new SignalingClient({
      urls: o.signalingUrls,
      agentId: o.agentId,
      identity: () => this.identity,
      metadata: o.mesh ? { mesh: o.mesh } : {},
      failoverTimeoutMs: o.failoverTimeoutMs ?? 5_000,
      backoffBaseMs: o.backoffBaseMs ?? 1_000,
      backoffMaxMs: o.backoffMaxMs ?? 30_000,
      rejectUnauthorized: o.rejectUnauthorized ?? true,
      ca: o.ca,
      clock: this.clock,
      onFrame: (f) =>
        void this.onFrame(f).catch((err) => this.event('signaling_error', { error: String(err) })),
      onEvent: (name, metadata) => this.event(name, metadata),
      onRetry: (delayMs) => this.lines?.retrying(delayMs),
    });
  }

  get id(): string {
    return this.o.agentId;
  }

  get publicKey(): Uint8Array {
    return this.identity.publicKey;
  }

  get signalingUrl(): string | undefined {
    return this.signaling.url;
  }

  event(event: string, metadata: Record<string, unknown> = {}, peerId?: string): void {
    this.o.events?.log({ event, agent_id: this.o.agentId, ...(peerId ? { peer_id: peerId } : {}), metadata });
    this.lines?.event(event, metadata, peerId);
  }

  private newTurnPool(): TurnPool {
    return new TurnPool({
      servers: this.iceServers.filter((s) => /^turns?:/.test(s.urls)),
      checkIntervalMs: this.o.turnHealthIntervalMs,
      onEvent: (name, metadata) => this.event(name, metadata),
    });
  }

  /**
   * The STUN servers a connection gathers with: those answering, fastest first (werift asks only
   * the first, and a dead one costs every gathering its 5 s STUN timeout, the whole fallback
   * timeout). When none of the configured ones answers — often a coturn that died serving both —
   * a healthy TURN server's own port, which answers Binding requests (its pool probes it so).
   */
  private stun(): IceServer[] {
    const configured = this.iceServers.filter((s) => /^stuns?:/.test(s.urls));
    const live = this.stunPool.ordered();
    if (live.length || configured.length === 0) return live;
    for (const t of this.turn.ordered()) {
      const u = parseIceUrl(t.urls, ['turn', 'turns']);
      if (typeof u === 'object' && u.scheme === 'turn' && u.transport !== 'tcp')
        return [{ urls: `stun:${u.host.includes(':') ? `[${u.host}]` : u.host}:${u.port}` }];
    }
    return configured;
  }

  /** After a lost link or a pushed TURN change: both pools find out which servers still answer. */
  private recheckServers(): void {
    void this.turn.recheck();
    void this.stunPool.recheck();
  }

  /** The answerer's settings: STUN, plus the healthiest TURN server so relay candidates exist too. */
  private answerIce(): LinkIce {
    const turn = this.turn.ordered()[0];
    return {
      iceServers: [...this.stun(), ...(turn ? [turn] : [])],
      policy: this.o.iceTransportPolicy ?? 'all',
    };
  }

  /**
   * Offerer: a direct attempt (policy "all"), then relay-only attempts through one TURN server each,
   * healthiest first, each given the fallback timeout; a failed server counts against its circuit.
   */
  private async connectTo(peerId: string): Promise<void> {
    this.connecting.set(peerId, (this.connecting.get(peerId) ?? 0) + 1);
    try {
      await this.connectAttempts(peerId);
    } finally {
      const left = (this.connecting.get(peerId) ?? 1) - 1;
      if (left > 0) this.connecting.set(peerId, left);
      else this.connecting.delete(peerId);
    }
  }

  private async connectAttempts(peerId: string): Promise<void> {
    const timeout = this.o.turnFallbackTimeoutMs ?? 5_000;
    // A recheck under way (a lost link, a pushed TURN change) says whether the STUN server is dead.
    await this.stunPool.settled();
    const attempt = async (ice: LinkIce, turnUrl?: string): Promise<boolean> => {
      const old = this.links.get(peerId);
      if (old) {
        this.links.delete(peerId);
        old.close('new connection attempt');
      }
      const link = this.link(peerId);
      if (!link) return false;
      link.turnServer = turnUrl;
      link.offer(ice).catch(() => {});
      try {
        await link.whenReady(timeout);
        return true;
      } catch {
        return false;
      }
    };
    if ((this.o.iceTransportPolicy ?? 'all') === 'all') {
      if (await attempt({ iceServers: this.stun(), policy: 'all' })) return;
      if (this.stopped) return;
      if (this.turn.size === 0) return this.retryLater(peerId);
      this.event('turn_fallback_initiated', { after_ms: timeout }, peerId);
    }
    await this.turn.settled();
    const servers = this.turn.ordered();
    for (const [i, server] of servers.entries()) {
      if (this.stopped) return;
      if (i > 0) this.event('turn_fallback_retry', { turn_server: server.urls, attempt: i + 1 }, peerId);
      if (await attempt({ iceServers: [...this.stun(), server], policy: 'relay' }, server.urls)) {
        // turn_connection_detected comes from onReady, as for every link relayed on this side.
        this.event('turn_fallback_successful', { turn_server: server.urls }, peerId);
        return;
      }
      this.turn.failure(server.urls);
    }
    if (servers.length === 0)
      this.event(
        'all_turn_servers_unhealthy',
        { turn_servers: this.turn.states.map((s) => s.server.urls) },
        peerId,
      );
    this.retryLater(peerId);
  }

  /**
   * Every attempt of a connection failed (direct and each relay): the pair is retried with the
   * healing backoff until it connects or healing gives up, as a lost link is. Without this a pair
   * whose first round failed stayed closed for good. Within a healing round nothing more is scheduled.
   */
  private retryLater(peerId: string): void {
    if (this.stopped || this.departed.has(peerId) || this.healing.has(peerId)) return;
    if (this.links.get(peerId)?.ready) return;
    this.event('connection_attempts_failed', {}, peerId);
    // This side offered (it registered later, CONTRACT §1.5), so it keeps offering whatever the ids:
    // healing's smaller-id rule would leave a larger-id offerer waiting for an offer nobody sends.
    this.heal(peerId, 0, true);
  }

  start(): void {
    void this.turn.start();
    void this.stunPool.start();
    this.signaling.start();
    const hbTimeout = this.o.heartbeatTimeoutMs ?? 30_000;
    this.every(this.o.statsIntervalMs ?? 2_000, () => void this.reportQuality());
    this.every(this.o.memoryIntervalMs ?? 30_000, () => this.reportMemory());
    this.every(Math.max(50, Math.floor(hbTimeout / 3)), () => this.heartbeat(hbTimeout));
  }

  /** A repeating timer on the agent's clock, cancelled by stop(). */
  private every(ms: number, fn: () => void): void {
    let timer: TimerHandle | undefined;
    const tick = () => {
      if (this.stopped) return;
      timer = this.clock.setTimeout(tick, ms);
      unref(timer);
      fn();
    };
    timer = this.clock.setTimeout(tick, ms);
    unref(timer);
    this.timers.push(() => this.clock.clearTimeout(timer));
  }

  /** Says bye on every channel, closes every connection, timer and socket. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.turn.stop();
    this.stunPool.stop();
    for (const cancel of this.timers) cancel();
    for (const h of this.healing.values()) this.clock.clearTimeout(h.timer);
    const links = [...this.links.values()];
    // The bye goes on the channel and through signaling: a peer whose channel is already gone
    // still hears it, and closes at once instead of after its heartbeat timeout.
    for (const link of links) {
      link.close('agent stopping');
      this.signaling.send({ type: 'bye', to: link.peerId });
    }
    await new Promise((r) => setTimeout(r, 50));
    // werift's close() can wait on DTLS/SCTP timers for seconds: bounded, as is the socket's close.
    await bounded(Promise.all(links.map((l) => l.pc?.close().catch(() => {}))), 300);
    await bounded(this.signaling.close(), 300);
  }

  private newPeerConnection = (ice?: LinkIce): RTCPeerConnection => {
    const settings = ice ?? this.answerIce();
    const turn = settings.iceServers.find((s) => /^turns?:/.test(s.urls));
    const parsed = turn ? parseIceUrl(turn.urls, ['turn', 'turns']) : undefined;
    const hooked = this.o.relayReach === false && settings.policy === 'all';
    const reach = hooked ? undefined : relayPairFilter(typeof parsed === 'object' ? parsed.host : undefined);
    const own = this.o.peerConfig?.iceFilterCandidatePair as ((pair: never) => boolean) | undefined;
    const pc = new RTCPeerConnection({
      iceServers: settings.iceServers,
      iceTransportPolicy: settings.policy,
      ...gatherOn(this.o.loopbackOnly ? ['127.0.0.1'] : this.o.iceAddresses),
      ...this.o.peerConfig,
      ...(reach ? { iceFilterCandidatePair: (pair: never) => reach(pair) && (own?.(pair) ?? true) } : {}),
    } as ConstructorParameters<typeof RTCPeerConnection>[0]);
    if (turn) this.turnOf.set(pc, turn.urls);
    return pc;
  };

  private link(peerId: string): PeerLink | undefined {
    const key = this.keys.get(peerId);
    if (!key) return undefined;
    const existing = this.links.get(peerId);
    if (existing && !existing.closed) return existing;
    const link = new PeerLink(peerId, key, {
      selfId: this.o.agentId,
      signer: () => this.signer,
      verifier: this.verifier,
      ...(this.o.verifyPool === false ? {} : { pool: this.o.verifyPool ?? sharedVerifyPool() }),
      now: this.now,
      newPeerConnection: this.newPeerConnection,
      signal: (frame) => {
        this.signaling.send(frame);
        // werift puts every candidate in the SDP (no trickle): the runbook's ice_candidate_sent, per SDP
        if ((frame.type === 'offer' || frame.type === 'answer') && typeof frame.sdp === 'string') {
          const types = [...frame.sdp.matchAll(/^a=candidate:.* typ (\w+)/gm)].map((m) => m[1]);
          this.event('ice_candidate_sent', { sdp: frame.type, count: types.length, types }, String(frame.to));
        }
      },
      onState: (l, state, candidateType, rttMs) => {
        this.signaling.send({
          type: 'connection-state',
          peer_id: l.peerId,
          // a given-up peer's last attempt closing does not undo its failure
          state: state === 'closed' && this.failedPeers.has(l.peerId) ? 'failed' : state,
          candidate_type: candidateType,
          rtt_ms: rttMs,
        });
        this.event('connection_state_changed', { state, candidateType }, l.peerId);
      },
      onReady: (l) => {
        this.failedPeers.delete(l.peerId);
        const healing = this.healing.get(l.peerId);
        if (healing) {
          this.clock.clearTimeout(healing.timer);
          this.healing.delete(l.peerId);
          this.event('mesh_partition_healed', {}, l.peerId);
        }
        const pc = l.pc;
        void l.stats().then((s) => {
          this.event('p2p_connection_established', { candidateType: s.candidateType }, l.peerId);
          // Whichever side offered and whichever attempt it was: this end relays, through this server
          // (what failover turn waits for on the replacement, and the monitoring's TURN count).
          const server = l.turnServer ?? (pc ? this.turnOf.get(pc) : undefined);
          if (s.candidateType === 'relay' && server)
            this.event('turn_connection_detected', { turn_server: server }, l.peerId);
        });
      },
      onMessage: (l, m) => this.o.onMessage?.(l.peerId, m),
      onDtlsFailed: (l) => {
        this.counters.dtls_failures += 1;
        this.event('dtls_validation_failed', {}, l.peerId);
      },
      onRejected: (l, reason, detail) => {
        this.counters.signature_failures += 1;
        this.event('signature_verification_failed', { reason, detail }, l.peerId);
      },
      onClosed: (l, why) => {
        if (this.links.get(l.peerId) === l) this.links.delete(l.peerId);
        if (!this.stopped && l.readyAt !== undefined) this.lines?.linkClosed(l.peerId, why);
        // An established link the peer lost (its heartbeat gave up on us, or the transport failed) while the peer
        // is still in the mesh heals like a detected partition. Without this, a peer with the larger
        // id that times out a healed link waits for an offer nobody sends (CONTRACT: smaller id offers).
        if (
          !this.stopped &&
          l.readyAt !== undefined &&
          LOST_LINK.test(why) &&
          !this.departed.has(l.peerId) &&
          !this.healing.has(l.peerId) &&
          !this.links.has(l.peerId)
        ) {
          this.recheckServers();
          this.heal(l.peerId, 0);
        }
        this.counters.messages_sent += l.sent;
        this.counters.messages_received += l.received;
        if (!this.stopped)
          this.signaling.send({
            type: 'connection-state',
            peer_id: l.peerId,
            state: this.failedPeers.has(l.peerId) ? 'failed' : 'closed',
            candidate_type: null,
            rtt_ms: null,
          });
      },
    });
    this.links.set(peerId, link);
    return link;
  }

  private async onFrame(f: Record<string, any>): Promise<void> {
    if (this.stopped) return;
    switch (f.type) {
      case 'registered':
        for (const p of f.peers as { agent_id: string; public_key: string; rotations?: unknown }[]) {
          this.departed.delete(p.agent_id);
          if (!this.pin(p.agent_id, p.public_key, p.rotations)) continue;
          // CONTRACT §1.5: the agent that registers later offers to every peer it is not linked with.
          const live = this.links.get(p.agent_id);
          if (!live || live.closed) void this.connectTo(p.agent_id);
        }
        // A (re)registration starts a fresh record on the instance (an earlier one died, or forgot
        // this agent's reports when it left): say again which links are up, so /connections, the
        // gates and failover validation see the established pairs, not only new ones.
        for (const l of this.links.values())
          if (l.ready && !l.closed)
            void l.stats().then((st) =>
              this.signaling.send({
                type: 'connection-state',
                peer_id: l.peerId,
                state: 'connected',
                candidate_type: st.candidateType,
                rtt_ms: st.rttMs,
              }),
            );
        // A key change noticed before this (re)registration still reaches this instance's /metrics.
        if (this.counters.witness_key_changed)
          this.signaling.send({
            type: 'metrics-report',
            witness_key_changed: this.counters.witness_key_changed,
          });
        return;
      case 'agent-joined': {
        if (f.agent_id === this.o.agentId) return;
        this.departed.delete(f.agent_id);
        const key = this.pin(f.agent_id, f.public_key, f.rotations);
        const live = this.links.get(f.agent_id);
        if (live && key) live.publicKey = key;
        return;
      }
      case 'offer': {
        // An offer proves its sender registered. Signaling vouches for its key in the offer (an
        // extension), so a peer whose agent-joined never arrived is still answered; a different key
        // is taken only with a rotation proof, as from an announcement (a bare mismatch was reported
        // by the announcement already). Before any await, so frames that follow it (agent-left, a
        // rotation's agent-joined) are applied after it, in the order signaling sent them.
        this.departed.delete(f.from);
        const pinned = this.keys.get(f.from);
        if (
          typeof f.public_key === 'string' &&
          (!pinned || (f.rotations !== undefined && toBase64url(pinned) !== f.public_key))
        ) {
          const key = this.pin(f.from, f.public_key, f.rotations);
          const live = this.links.get(f.from);
          if (live && key) live.publicKey = key;
        }
        // The answer gathers with the STUN servers a recheck under way is about to judge.
        await this.stunPool.settled();
        if (this.stopped) return;
        if (!this.keys.has(f.from)) {
          this.event(
            'offer_dropped',
            {
              reason:
                typeof f.public_key === 'string'
                  ? 'the key in the offer was refused (see peer_key_mismatch)'
                  : 'no key known for the sender: no agent-joined, and no key in the offer',
            },
            f.from,
          );
          return;
        }
        const old = this.links.get(f.from);
        // Glare: both sides offered at once. The smaller id keeps its own offer (CONTRACT §1.5, the
        // same rule as reconnects) and the other side answers it; otherwise each would drop its own
        // offer for the other's and both answers would point at closed connections.
        if (old && !old.closed && !old.ready && old.offerer && this.o.agentId < f.from) return;
        if (old && !old.closed) {
          // The peer renegotiates (it lost the link, or heals a partition): its offer replaces ours.
          this.links.delete(f.from);
          old.close('replaced by a new offer');
        }
        await this.link(f.from)?.acceptOffer(f.sdp, f.session);
        return;
      }
      case 'answer':
        await this.links.get(f.from)?.acceptAnswer(f.sdp, f.session);
        return;
      case 'ice-candidate':
        await this.links.get(f.from)?.addCandidate(f.candidate);
        return;
      case 'bye':
        this.links.get(f.from)?.close('peer said bye through signaling');
        return;
      case 'agent-left': {
        // A peer that left signaling is gone, not partitioned: stop healing toward it.
        this.departed.add(f.agent_id);
        const healing = this.healing.get(f.agent_id);
        if (healing) {
          this.clock.clearTimeout(healing.timer);
          this.healing.delete(f.agent_id);
        }
        // Blocked (agents block, incident security): cut off from the mesh too, not only from
        // signaling. A link that merely lost signaling is kept (its DataChannel does not need it).
        if (f.reason === 'blocked') this.links.get(f.agent_id)?.close('peer blocked by signaling');
        return;
      }
      case 'rotate-keys': {
        const next = generateKeyPair();
        const previous = this.identity;
        const publicKey = toBase64url(next.publicKey);
        // The old key hands the id over to the new one: signaling moves the binding (and revokes the
        // old key) only with this proof, and peers that pinned the old key follow it with it.
        const rotation: RotationProof = {
          previous_key: toBase64url(previous.publicKey),
          public_key: publicKey,
          signature: toBase64url(this.signer.sign(rotationStatement(this.o.agentId, publicKey))),
        };
        try {
          // Durable before use: once signaling has revoked the old key, a restart must find the new one.
          await this.o.persistRotation?.(next, rotation);
        } catch (err) {
          this.event('key_rotation_failed', { rotation_id: f.rotation_id, error: (err as Error).message });
          return;
        }
        this.identity = { ...next, rotation };
        this.signer = createSigner(next.seed);
        // keys-rotated only once the registry holds the new key, so a completed rotation means it.
        const before = this.signaling.registrations;
        this.signaling.reregister();
        await this.waitRegistered(() => this.signaling.registrations > before);
        this.signaling.send({ type: 'keys-rotated', rotation_id: f.rotation_id });
        this.event('srtp_key_rotated', {
          rotation_id: f.rotation_id,
          key_id: keyId(next.publicKey),
          previous_key_id: keyId(previous.publicKey),
        });
        return;
      }
      case 'config':
        if (Array.isArray(f.turn_servers)) {
          const turn = this.iceServers.find((s) => s.urls.startsWith('turn'));
          this.iceServers = [
            ...this.iceServers.filter((s) => !s.urls.startsWith('turn')),
            ...f.turn_servers.map((u: string) => ({ ...turn, urls: u })),
          ];
          this.turn.stop();
          this.turn = this.newTurnPool();
          void this.turn.start();
          // TURN servers change when one failed, and a coturn serves STUN too: the next attempts
          // (the reconnect that follows a failover's push) wait for the STUN servers' answer.
          void this.stunPool.recheck();
          // A pair whose relay died waits out its healing backoff (up to minutes at the later steps),
          // and reconnect-turn-peers reaches only live relayed pairs: the new list is what it waited
          // for, so its healing starts over now, and the failover that pushed it sees it come back.
          for (const [peerId, h] of [...this.healing]) {
            this.clock.clearTimeout(h.timer);
            this.heal(peerId, 0, h.offers);
          }
        }
        if (f.bandwidth) this.bandwidth = f.bandwidth;
        return;
      case 'error':
        // What signaling refused after registration (a relay to a peer it no longer holds, a rate
        // limit): in the agent's log, so a negotiation that never completes shows why.
        this.event(
          'signaling_error_received',
          { code: f.code, message: f.message },
          typeof f.to === 'string' ? f.to : undefined,
        );
        return;
      case 'reconnect':
        for (const peer of f.peers as string[]) void this.connectTo(peer);
        return;
    }
  }

  /**
   * The key to use for a peer: the pinned one, or an announced successor that a chain of rotations
   * signed from the pinned key proves. A changed key without that proof (a squatter, a forged
   * announcement, an operator's rebind) is refused and reported; the pin stays.
   */
  private pin(peerId: string, publicKey: string, rotations: unknown): Uint8Array | undefined {
    const pinned = this.keys.get(peerId);
    const r = acceptPeerKey(peerId, pinned, publicKey, rotations);
    if (r.ok) {
      this.keys.set(peerId, r.key);
      if (pinned && r.rotated)
        this.event('peer_key_rotated', { key_id: keyId(r.key), previous_key_id: keyId(pinned) }, peerId);
      return r.key;
    }
    this.counters.peer_key_mismatches += 1;
    const metadata = {
      reason: r.reason,
      pinned_key_id: pinned ? keyId(pinned) : null,
      announced_key_id: r.announcedKeyId,
      hint: 'after an operator rebinds the peer (ifmesh agents rebind), restart this agent to trust its new key',
    };
    this.o.events?.log({
      event: 'peer_key_mismatch',
      agent_id: this.o.agentId,
      peer_id: peerId,
      severity: 'warning',
      metadata,
    });
    this.lines?.event('peer_key_mismatch', metadata, peerId);
    return undefined;
  }

  private async waitRegistered(done = () => this.signaling.registered): Promise<void> {
    await waitFor(done, { timeoutMs: 5_000, intervalMs: 20 }, this.clock);
  }

  /** Every third of the heartbeat timeout: ping ready peers; a peer silent for the whole timeout is partitioned. */
  private heartbeat(timeoutMs: number): void {
    const now = this.now();
    for (const link of this.links.values()) {
      if (!link.ready) continue;
      if (now - link.lastHeard > timeoutMs) {
        this.event('mesh_partition_detected', { silent_ms: now - link.lastHeard }, link.peerId);
        this.links.delete(link.peerId);
        link.close('heartbeat timeout');
        // The path may have died with its TURN server: find out before the next attempt picks one.
        this.recheckServers();
        this.heal(link.peerId, 0);
      } else {
        link.ping(timeoutMs).catch(() => {});
      }
    }
  }

  /**
   * Reconnects with backoff 1 s, 2 s, 4 s …; the smaller agent id offers (CONTRACT §1.5), or this
   * side when it is retrying its own failed offer (`offers`).
   */
  private heal(peerId: string, attempt: number, offers = this.o.agentId < peerId): void {
    const max = this.o.healingAttempts ?? 10;
    if (this.stopped) return;
    if (attempt >= max) {
      this.healing.delete(peerId);
      this.event('mesh_healing_failed_final', { attempts: attempt }, peerId);
      this.failedPeers.add(peerId);
      this.signaling.send({
        type: 'connection-state',
        peer_id: peerId,
        state: 'failed',
        candidate_type: null,
        rtt_ms: null,
      });
      return;
    }
    const delay = (this.o.healingBaseMs ?? 1_000) * 2 ** attempt;
    this.event(
      attempt === 0 ? 'mesh_healing_attempt' : 'mesh_reconnection_scheduled',
      { attempt: attempt + 1, delay_ms: delay },
      peerId,
    );
    this.healing.set(peerId, {
      offers,
      timer: this.clock.setTimeout(() => {
        if (this.stopped) return;
        const live = this.links.get(peerId);
        if (live?.ready) return;
        if (offers && !this.connecting.has(peerId)) void this.connectTo(peerId);
        this.heal(peerId, attempt + 1, offers);
      }, delay),
    });
  }

  private async reportQuality(): Promise<void> {
    const now = performance.now();
    const total = [...this.links.values()].reduce((n, l) => n + l.bytesSent, 0);
    if (this.lastBytes.at) {
      const bytesPerSecond = Math.max(0, ((total - this.lastBytes.total) * 1000) / (now - this.lastBytes.at));
      this.event('bandwidth_update', {
        bytesPerSecond: Math.round(bytesPerSecond),
        capBytesPerSecond: this.capBytesPerSecond() ?? null,
      });
      this.signaling.send({ type: 'metrics-report', bytes_per_second: Math.round(bytesPerSecond) });
    }
    this.lastBytes = { total, at: now };
    for (const link of this.links.values()) {
      if (!link.ready) continue;
      const s = await link.stats();
      this.event(
        'connection_quality_update',
        {
          roundTripTime: s.rttMs,
          packetsLost: s.packetsLost,
          lossRatio: s.lossRatio,
          candidateType: s.candidateType,
        },
        link.peerId,
      );
      this.signaling.send({
        type: 'connection-state',
        peer_id: link.peerId,
        state: 'connected',
        candidate_type: s.candidateType,
        rtt_ms: s.rttMs,
        loss_ratio: s.lossRatio,
      });
    }
  }

  /** The witness answered under an unaccepted key: counted, and reported to signaling's /metrics now. */
  noteWitnessKeyChanged(): void {
    this.counters.witness_key_changed = (this.counters.witness_key_changed ?? 0) + 1;
    this.signaling.send({ type: 'metrics-report', witness_key_changed: this.counters.witness_key_changed });
  }

  private reportMemory(): void {
    const rss = process.memoryUsage.rss();
    this.event('memory_usage_update', { memory_bytes: rss });
    let sent = this.counters.messages_sent;
    let received = this.counters.messages_received;
    for (const l of this.links.values()) {
      sent += l.sent;
      received += l.received;
    }
    const cpu = process.cpuUsage();
    this.signaling.send({
      type: 'metrics-report',
      messages_sent: sent,
      messages_received: received,
      signature_failures: this.counters.signature_failures,
      dtls_failures: this.counters.dtls_failures,
      ...(this.counters.witness_key_changed
        ? { witness_key_changed: this.counters.witness_key_changed }
        : {}),
      memory_bytes: rss,
      cpu_seconds: (cpu.user + cpu.system) / 1e6,
    });
  }

  /** Bytes/s the agent is allowed under a pushed cap, or undefined when none applies. */
  private capBytesPerSecond(): number | undefined {
    const b = this.bandwidth;
    return b?.enableBandwidthAdaptation && b.maxBitrateMbps ? (b.maxBitrateMbps * 1_000_000) / 8 : undefined;
  }

  /**
   * Sends an application message to a peer, signed. Under a pushed bitrate cap
   * (POST /config/bandwidth) it waits for budget, a quarter second of it at most in one burst.
   */
  async send(peerId: string, type: string, payload: Record<string, unknown>): Promise<void> {
    const link = this.links.get(peerId);
    if (!link?.ready) throw new Error(`no ready channel to ${peerId}`);
    const cap = this.capBytesPerSecond();
    if (cap !== undefined) {
      const size = JSON.stringify(payload).length + 400;
      for (let i = 0; i < 10_000; i++) {
        const now = performance.now();
        this.budget.tokens = Math.min(
          cap / 4,
          this.budget.tokens + ((now - (this.budget.at || now)) / 1000) * cap,
        );
        this.budget.at = now;
        if (this.budget.tokens >= size) break;
        await new Promise((r) => setTimeout(r, Math.max(1, ((size - this.budget.tokens) / cap) * 1000)));
      }
      this.budget.tokens -= size;
    }
    if (!link.sendMessage(type, payload)) throw new Error(`channel to ${peerId} closed`);
  }

  /** Resolves when a ready channel exists to every id in `peers`. */
  async waitForPeers(peers: string[], timeoutMs: number): Promise<void> {
    const ready = () => peers.every((p) => this.links.get(p)?.ready);
    if (await waitFor(ready, { timeoutMs, intervalMs: 20 }, this.clock)) return;
    const missing = peers.filter((p) => !this.links.get(p)?.ready);
    throw new Error(
      `${this.o.agentId}: no ready channel to ${missing.join(', ')} within ${formatDuration(timeoutMs)}`,
    );
  }
}

/**
 * werift settings to gather host candidates on the given addresses only. With one address the
 * sockets (host, STUN and TURN) bind to it, so traffic leaves from that address whatever the routes
 * say; with several they bind to all and each address is announced.
 */
export function gatherOn(addresses: string[] | undefined): Record<string, unknown> {
  if (!addresses?.length) return {};
  return {
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: addresses,
    ...(addresses.length === 1 && addresses[0] !== '127.0.0.1'
      ? { iceInterfaceAddresses: { udp4: addresses[0] } }
      : {}),
  };
}

/** Waits for `p` at most `ms` (real time: a shutdown bound, not a schedule). */
function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => {}),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function unref(t: TimerHandle | undefined): void {
  (t as { unref?: () => void } | undefined)?.unref?.();
}
