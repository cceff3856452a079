// One peer: a werift RTCPeerConnection with the ordered, reliable `ifmesh` DataChannel. Every
// message is a signed IFMessage. The channel counts as ready only once the peer's signed `hello`
// arrives (werift's offerer sees `open` before the answerer can use it), and a `bye` closes the
// link at once, because werift's close() tells the peer nothing.
import { randomUUID } from 'node:crypto';
import type { RTCDataChannel, RTCPeerConnection } from 'werift';
import { type Signer, verifySignature } from '../crypto/ed25519.js';
import {
  buildMessage,
  type MessageVerifier,
  type Precheck,
  signToText,
  type VerifyFailure,
  type VerifyResult,
} from '../crypto/ifmessage.js';
import type { VerifyPool } from '../crypto/verify-pool.js';
import type { IFMessage } from '../protocol/ifmessage.js';
import type { CandidateType, ConnectionState } from '../protocol/signaling.js';
import { formatDuration } from '../ui/units.js';

/** A received message held for ordering: its checks so far, and the signature's verdict once in. */
type Inbound = { pre: Precheck; holds: boolean | undefined } | { failure: VerifyFailure };

export interface LinkContext {
  selfId: string;
  signer: () => Signer;
  verifier: MessageVerifier;
  /** Verifies signatures on worker threads while the link is busy; absent: always inline. */
  pool?: VerifyPool;
  now: () => number;
  newPeerConnection: (ice?: LinkIce) => RTCPeerConnection;
  signal: (frame: Record<string, unknown>) => void;
  onState: (
    link: PeerLink,
    state: ConnectionState,
    candidateType: CandidateType | null,
    rttMs: number | null,
  ) => void;
  onReady: (link: PeerLink) => void;
  onMessage: (link: PeerLink, message: IFMessage) => void;
  onRejected: (link: PeerLink, reason: string, detail: string) => void;
  onClosed: (link: PeerLink, why: string) => void;
  /** The connection failed in DTLS: the peer's certificate did not match its signalled fingerprint. */
  onDtlsFailed?: (link: PeerLink) => void;
}

/** ICE settings for one attempt: the servers (one TURN at most) and the transport policy. */
export interface LinkIce {
  iceServers: { urls: string; username?: string; credential?: string }[];
  policy: 'all' | 'relay';
}

/** Browsers hide host addresses behind mDNS `.local` names; resolving them stalls werift for 10 s. */
export function withoutMdns(sdp: string): string {
  return sdp
    .split(/\r?\n/)
    .filter((line) => !/^a=candidate:\S+ \d+ \S+ \d+ \S+\.local /.test(line))
    .join('\r\n');
}

export interface LinkStats {
  /**
   * This side's candidate type on the selected pair, as the path really is: the peer's view of our
   * address when it told us (a `path` message), else werift's stats. werift pairs a server-reflexive
   * or peer-reflexive path by its host base, so its own stats call every NATed path "host"; the peer
   * sees the NAT's mapping and knows it as srflx (our gathered mapping) or prflx (a new one: a
   * symmetric NAT). A relay stays a relay.
   */
  candidateType: CandidateType | null;
  /** The peer's candidate type on the selected pair, from werift's stats (exact: it is what we saw). */
  remoteCandidateType: CandidateType | null;
  rttMs: number | null;
  packetsLost: number;
  /** Signed pings that got no pong in time, of those sent on this link (null before the first). */
  lossRatio: number | null;
}

export class PeerLink {
  pc: RTCPeerConnection | undefined;
  dc: RTCDataChannel | undefined;
  ready = false;
  closed = false;
  /**
   * Names one negotiation: the offerer makes it, the answerer echoes it. An answer to an older offer
   * (a peer that was frozen answers every offer it missed, in order) must not land on this one.
   */
  session: string | undefined;
  /** This side made the offer (not the answer) of the current negotiation. */
  offerer = false;
  /** The TURN server of the attempt that made this link, if it went through one. */
  turnServer: string | undefined;
  /** When negotiation started and when the peer's hello arrived (ms, ctx clock): the open time. */
  startedAt: number | undefined;
  readyAt: number | undefined;
  lastHeard: number;
  sent = 0;
  received = 0;
  bytesSent = 0;
  rejected = 0;
  pingsSent = 0;
  pingsLost = 0;
  /** How the peer saw this side's address on the selected pair (its `path` message). */
  seenAs: CandidateType | undefined;
  /** The peer's type we last told it (sent again whenever the selected pair changes it). */
  private toldPeer: CandidateType | undefined;
  private readonly pings = new Map<
    string,
    { t0: number; resolve: (rtt: number) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }
  >();
  private readyWaiters: (() => void)[] = [];
  /** Messages waiting for the pool's verdict on their signature, or behind one that is (arrival order). */
  private inbox: Inbound[] = [];
  private inboxHead = 0;
  private draining = false;
  /** Signatures this link verified inline in the current event-loop turn (reset by a setImmediate). */
  private inlineThisTurn = 0;

  constructor(
    readonly peerId: string,
    public publicKey: Uint8Array,
    private readonly ctx: LinkContext,
  ) {
    this.lastHeard = ctx.now();
  }

  /** Offerer side: channel, offer with every candidate (werift gathers before resolving). */
  async offer(ice?: LinkIce): Promise<void> {
    this.startedAt = this.ctx.now();
    const pc = this.open(ice);
    this.attach(pc.createDataChannel('ifmesh', { ordered: true }));
    this.session = randomUUID();
    this.offerer = true;
    await pc.setLocalDescription(await pc.createOffer());
    if (!this.closed)
      this.ctx.signal({
        type: 'offer',
        to: this.peerId,
        sdp: pc.localDescription!.sdp,
        session: this.session,
      });
  }

  async acceptOffer(sdp: string, session?: string): Promise<void> {
    this.startedAt = this.ctx.now();
    this.session = session;
    const pc = this.open();
    pc.onDataChannel.subscribe((dc) => {
      if (dc.label === 'ifmesh') this.attach(dc);
    });
    await pc.setRemoteDescription({ type: 'offer', sdp: withoutMdns(sdp) });
    await pc.setLocalDescription(await pc.createAnswer());
    if (!this.closed)
      this.ctx.signal({
        type: 'answer',
        to: this.peerId,
        sdp: pc.localDescription!.sdp,
        ...(session === undefined ? {} : { session }),
      });
  }

  /** Applies the peer's answer; one that names another negotiation (a stale answer) is dropped. */
  async acceptAnswer(sdp: string, session?: string): Promise<void> {
    // A duplicate or late answer must not throw "Cannot handle answer in signaling state".
    if (!this.pc || this.pc.signalingState !== 'have-local-offer') return;
    if (session !== undefined && session !== this.session) return;
    await this.pc.setRemoteDescription({ type: 'answer', sdp: withoutMdns(sdp) }).catch(() => {});
  }

  async addCandidate(candidate: Record<string, unknown>): Promise<void> {
    const c = candidate as { candidate?: string };
    // Browsers hide host addresses behind mDNS .local names; resolving them stalls werift for 10 s.
    if (!this.pc || typeof c.candidate !== 'string' || /\s[^\s]+\.local\s/.test(c.candidate)) return;
    await this.pc.addIceCandidate(candidate as never).catch(() => {});
  }

  private open(ice?: LinkIce): RTCPeerConnection {
    this.pc?.close().catch(() => {});
    const pc = this.ctx.newPeerConnection(ice);
    this.pc = pc;
    pc.connectionStateChange.subscribe((state) => {
      if (pc !== this.pc) return;
      void this.stats().then((s) =>
        this.ctx.onState(this, state as ConnectionState, s.candidateType, s.rttMs),
      );
      if (state === 'failed' && pc.dtlsTransports.some((t) => t.state === 'failed'))
        this.ctx.onDtlsFailed?.(this);
      if (state === 'failed' || state === 'closed') this.shutdown(`connection ${state}`);
    });
    return pc;
  }

  private attach(dc: RTCDataChannel): void {
    this.dc = dc;
    dc.stateChanged.subscribe((state) => {
      if (state === 'open') this.sendMessage('hello', {});
      if (state === 'closed') this.shutdown('channel closed');
    });
    dc.onMessage.subscribe((data) => this.receive(typeof data === 'string' ? data : data.toString('utf8')));
    if (dc.readyState === 'open') this.sendMessage('hello', {});
  }

  private receive(text: string): void {
    // A closed link's channel can still deliver for a moment (its transport closes after the bye):
    // a late hello must not make it ready again, or the agent counts a dead link as healed.
    if (this.closed) return;
    this.lastHeard = this.ctx.now();
    const { verifier, pool } = this.ctx;
    const pre = verifier.precheckText(text, {
      publicKey: this.publicKey,
      from: this.peerId,
      to: this.ctx.selfId,
    });
    const queued = this.inbox.length - this.inboxHead;
    if (pre.ok && pool?.shouldOffload(queued, this.inlineThisTurn)) {
      // Busy: the signature goes to the pool, and the message waits its turn here so that messages
      // from this peer are still handled in the order they arrived.
      const entry: Inbound = { pre, holds: undefined };
      this.inbox.push(entry);
      pool.submit(this.publicKey, pre.signed, pre.signature, (holds) => {
        entry.holds = holds;
        this.drainInbox();
      });
      return;
    }
    if (queued > 0) {
      // Behind messages still in the pool (a message refused before its signature, or a pool gone
      // inline): it waits its turn, and its replay check runs in that turn.
      const holds = pre.ok ? verifySignature(this.publicKey, pre.signed, pre.signature) : false;
      this.inbox.push(pre.ok ? { pre, holds } : { failure: pre });
      return;
    }
    if (!pre.ok) {
      this.handle(pre);
      return;
    }
    let holds: boolean;
    if (pool) {
      holds = pool.verifyInline(this.publicKey, pre.signed, pre.signature);
      // A second message in this turn means the thread is behind: it goes to the pool.
      if (this.inlineThisTurn++ === 0)
        setImmediate(() => {
          this.inlineThisTurn = 0;
        });
    } else holds = verifySignature(this.publicKey, pre.signed, pre.signature);
    this.handle(verifier.finish(pre, holds));
  }

  /** Hands on every message at the head of the inbox whose verdict is in, in arrival order. */
  private drainInbox(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.inboxHead < this.inbox.length) {
        const e = this.inbox[this.inboxHead]!;
        if ('pre' in e && e.holds === undefined) break;
        this.inbox[this.inboxHead++] = undefined as never;
        // A bye (or a failure) while messages waited: those behind it are dropped, as a closed
        // link drops what arrives after it closes.
        if (this.closed) continue;
        this.handle('pre' in e ? this.ctx.verifier.finish(e.pre, e.holds!) : e.failure);
      }
      if (this.inboxHead === this.inbox.length) {
        this.inbox = [];
        this.inboxHead = 0;
      }
    } finally {
      this.draining = false;
    }
  }

  private handle(r: VerifyResult): void {
    if (!r.ok) {
      this.rejected += 1;
      this.ctx.onRejected(this, r.reason, r.detail);
      return;
    }
    this.received += 1;
    const m = r.message;
    switch (m.type) {
      case 'hello':
        if (!this.ready) {
          this.ready = true;
          this.readyAt = this.ctx.now();
          // Answer the hello so the peer knows we can receive (it may have sent first).
          this.sendMessage('hello', { ack: true });
          for (const w of this.readyWaiters.splice(0)) w();
          this.ctx.onReady(this);
          // Tell the peer how its address looked from here, so it can report its real path.
          void this.stats();
        }
        return;
      case 'path': {
        const t = m.payload.candidate_type;
        if (t === 'host' || t === 'srflx' || t === 'prflx' || t === 'relay') this.seenAs = t;
        return;
      }
      case 'ping':
        this.sendMessage('pong', { ping_id: m.id });
        return;
      case 'pong': {
        const p = this.pings.get(String(m.payload.ping_id));
        if (p) {
          clearTimeout(p.timer);
          this.pings.delete(String(m.payload.ping_id));
          p.resolve(performance.now() - p.t0);
        }
        return;
      }
      case 'bye':
        // The peer's own reason travels on: 'heartbeat timeout' means it lost us, not that it left.
        this.shutdown(`peer said bye: ${String(m.payload.reason ?? 'no reason')}`);
        return;
      default:
        this.ctx.onMessage(this, m);
    }
  }

  /** Signs and sends; false when the channel is not open. */
  sendMessage(type: string, payload: Record<string, unknown>): IFMessage | undefined {
    if (!this.dc || this.dc.readyState !== 'open') return undefined;
    const { message: m, text } = signToText(
      buildMessage({ from: this.ctx.selfId, to: this.peerId, type, payload }, this.ctx.now()),
      this.ctx.signer(),
    );
    try {
      this.dc.send(text);
    } catch {
      return undefined;
    }
    this.sent += 1;
    this.bytesSent += text.length;
    return m;
  }

  /** A signed ping answered by a signed pong; resolves with the round-trip time in ms. */
  ping(timeoutMs = 5_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const m = this.sendMessage('ping', { n: randomUUID() });
      if (!m) return reject(new Error(`channel to ${this.peerId} is not open`));
      this.pingsSent += 1;
      const timer = setTimeout(() => {
        this.pings.delete(m.id);
        this.pingsLost += 1;
        reject(new Error(`no pong from ${this.peerId} within ${formatDuration(timeoutMs)}`));
      }, timeoutMs);
      // RTTs are sub-millisecond on loopback: the monotonic high-resolution clock, not ctx.now().
      this.pings.set(m.id, { t0: performance.now(), resolve, reject, timer });
    });
  }

  whenReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`channel to ${this.peerId} not ready within ${formatDuration(timeoutMs)}`)),
        timeoutMs,
      );
      this.readyWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async stats(): Promise<LinkStats> {
    const lossRatio = this.pingsSent ? this.pingsLost / this.pingsSent : null;
    const empty: LinkStats = {
      candidateType: null,
      remoteCandidateType: null,
      rttMs: null,
      packetsLost: 0,
      lossRatio,
    };
    if (!this.pc) return empty;
    try {
      const report = await this.pc.getStats();
      const all = [...(report as unknown as Map<string, Record<string, any>>).values()];
      const transport = all.find((s) => s.type === 'transport');
      const pair = all.find(
        (s) =>
          s.type === 'candidate-pair' &&
          (s.id === transport?.selectedCandidatePairId || s.selected || s.nominated),
      );
      const local = pair ? all.find((s) => s.id === pair.localCandidateId) : undefined;
      const remote = pair ? all.find((s) => s.id === pair.remoteCandidateId) : undefined;
      const own = (local?.candidateType as CandidateType | undefined) ?? null;
      const theirs = (remote?.candidateType as CandidateType | undefined) ?? undefined;
      if (
        this.ready &&
        theirs &&
        theirs !== this.toldPeer &&
        this.sendMessage('path', { candidate_type: theirs })
      )
        this.toldPeer = theirs;
      return {
        candidateType: own === 'relay' || own === null ? own : (this.seenAs ?? own),
        remoteCandidateType: (remote?.candidateType as CandidateType | undefined) ?? null,
        rttMs: typeof pair?.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null,
        packetsLost: 0,
        lossRatio,
      };
    } catch {
      return empty;
    }
  }

  /** Says goodbye on the channel (if open), then closes everything. Idempotent. */
  close(why: string): void {
    if (this.closed) return;
    this.sendMessage('bye', { reason: why });
    this.shutdown(why);
  }

  private shutdown(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    // A ping in flight settles now, lost: a caller awaiting it must not wait forever.
    for (const p of this.pings.values()) {
      clearTimeout(p.timer);
      this.pingsLost += 1;
      p.reject(new Error(`link to ${this.peerId} closed (${why}) before its pong`));
    }
    this.pings.clear();
    const pc = this.pc;
    // Let the bye leave before the transport goes.
    setTimeout(() => pc?.close().catch(() => {}), 20).unref();
    this.ctx.onClosed(this, why);
  }
}
