// What one agent's reports may do to the fleet-wide metrics. Agents report cumulative counters
// (`metrics-report`) and their connections (`connection-state`); both feed /metrics, whose alert
// rules and the canary and monitor gates read the whole fleet. Without bounds, one agent could
// report 10^15 signature failures or a thousand fake peers with a 10-minute RTT and move every
// fleet-wide figure alone. Here each report is weighed by what an honest agent could produce:
//
// - `metrics-report`: a token bucket per agent (burst 10, 1/s; agents send one every 2 s and one
//   every 30 s), and each counter's increase is capped at a plausible rate over the time since the
//   agent's previous report (COUNTER_RATES); gauges are capped at plausible maxima.
// - `connection-state`: only about a peer registered in the agent's own mesh (so an agent speaks
//   for its own pairs and no others), at most MAX_PEERS of them; a state change counts only within
//   a per-pair bucket (burst 20, one per 15 s: a healing pair's ten attempts fit), and an RTT is
//   observed at most once per pair per second. A report over a limit is dropped whole, so /metrics
//   and /connections stay consistent with each other.
//
// Every refusal is counted in webrtc_agent_reports_limited_total{kind,reason}.
import { Counter } from 'prom-client';
import type { AgentMetricsReport } from '../../protocol/signaling.js';
import type { ConnectionReport } from './registry.js';
import type { MeshCore, Session } from './types.js';

/** Highest believable increase per second of each cumulative counter an agent reports. */
export const COUNTER_RATES = {
  messages_sent: 10_000,
  messages_received: 10_000,
  message_errors: 1_000,
  signature_failures: 1_000,
  dtls_failures: 100,
  witness_key_changed: 10,
  /** CPU seconds per second: a 256-core host. */
  cpu_seconds: 256,
} as const;

export const REPORT_LIMITS = {
  metricsBurst: 10,
  metricsPerSecond: 1,
  stateBurst: 20,
  statePerSecond: 1 / 15,
  rttEveryMs: 1_000,
  maxPeers: 1_024,
  /** How long a peer found registered in the agent's mesh is trusted without asking again. */
  peerCheckMs: 10_000,
  maxMemoryBytes: 2 ** 40,
  /** 10 Gbit/s. */
  maxBytesPerSecond: 1.25e9,
} as const;

interface Bucket {
  tokens: number;
  at: number;
}

function take(b: Bucket, now: number, burst: number, perSecond: number): boolean {
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

interface AgentState {
  bucket: Bucket;
  /** The last raw cumulative values the agent reported. */
  raw: Partial<Record<keyof typeof COUNTER_RATES, number>>;
  /** When the agent's previous report (or its registration) was taken. */
  at: number;
}

interface PeerState {
  checkedAt: number;
  state: string | undefined;
  bucket: Bucket;
  lastRttAt: number;
}

type Verdict = 'ok' | 'rate' | 'unknown_peer' | 'too_many_peers';

export class ReportGuard {
  private readonly agents = new Map<string, AgentState>();
  private readonly peers = new WeakMap<Session, Map<string, PeerState>>();
  private readonly limited: Counter;

  constructor(private readonly core: Pick<MeshCore, 'now' | 'metrics' | 'local' | 'registry'>) {
    this.limited = new Counter({
      name: 'webrtc_agent_reports_limited_total',
      help: 'Agent reports dropped (rate, unknown_peer, too_many_peers) or clamped to a plausible value',
      labelNames: ['kind', 'reason'],
      registers: [core.metrics.registry],
    });
  }

  /** A registration: counters are measured from here on, not from whatever the first report claims. */
  registered(agentId: string): void {
    if (!this.agents.has(agentId))
      this.agents.set(agentId, {
        bucket: { tokens: REPORT_LIMITS.metricsBurst, at: this.core.now() },
        raw: {},
        at: this.core.now(),
      });
  }

  forget(agentId: string): void {
    this.agents.delete(agentId);
  }

  /** Applies a `metrics-report` to /metrics within the limits; returns whether it was taken. */
  metricsReport(agentId: string, r: AgentMetricsReport): boolean {
    const now = this.core.now();
    this.registered(agentId);
    const a = this.agents.get(agentId)!;
    if (!take(a.bucket, now, REPORT_LIMITS.metricsBurst, REPORT_LIMITS.metricsPerSecond)) {
      this.limited.inc({ kind: 'metrics', reason: 'rate' });
      return false;
    }
    const elapsedS = Math.max(1, (now - a.at) / 1000);
    a.at = now;
    const m = this.core.metrics;
    let clamped = false;
    const delta = (k: keyof typeof COUNTER_RATES): number => {
      const v = r[k];
      if (v === undefined) return 0;
      const before = a.raw[k];
      a.raw[k] = v;
      // A counter that went down is an agent that restarted: it counts from zero again.
      const d = before === undefined || v < before ? v : v - before;
      const cap = COUNTER_RATES[k] * elapsedS;
      if (d <= cap) return d;
      clamped = true;
      return cap;
    };
    m.messagesSent.inc(delta('messages_sent'));
    m.messagesReceived.inc(delta('messages_received'));
    m.messageErrors.inc(delta('message_errors'));
    m.signatureFailures.inc(delta('signature_failures'));
    m.dtlsFailures.inc(delta('dtls_failures'));
    const cpu = delta('cpu_seconds');
    if (r.cpu_seconds !== undefined) m.cpuSeconds.inc({ agent_id: agentId }, cpu);
    const keyChanged = delta('witness_key_changed');
    if (r.witness_key_changed !== undefined) m.witnessKeyChanged.inc({ reporter: 'agent' }, keyChanged);
    const bound = (v: number, max: number) => {
      if (v <= max) return v;
      clamped = true;
      return max;
    };
    if (r.bytes_per_second !== undefined)
      m.bandwidth.set({ agent_id: agentId }, bound(r.bytes_per_second, REPORT_LIMITS.maxBytesPerSecond));
    if (r.memory_bytes !== undefined)
      m.memory.set({ agent_id: agentId }, bound(r.memory_bytes, REPORT_LIMITS.maxMemoryBytes));
    if (clamped) this.limited.inc({ kind: 'metrics', reason: 'clamped' });
    return true;
  }

  /**
   * Whether a `connection-state` report may be stored and counted, and whether its RTT may be
   * observed (the report is stored with `rtt_ms` either way; only the histogram is sampled).
   */
  async connectionReport(
    session: Session,
    r: ConnectionReport,
  ): Promise<{ ok: boolean; observeRtt: boolean }> {
    const verdict = await this.checkPeer(session, r);
    if (verdict !== 'ok') {
      this.limited.inc({ kind: 'connection', reason: verdict });
      return { ok: false, observeRtt: false };
    }
    const now = this.core.now();
    const p = this.peers.get(session)!.get(r.peer_id)!;
    if (p.state !== r.state) {
      if (!take(p.bucket, now, REPORT_LIMITS.stateBurst, REPORT_LIMITS.statePerSecond)) {
        this.limited.inc({ kind: 'connection', reason: 'rate' });
        return { ok: false, observeRtt: false };
      }
      p.state = r.state;
    }
    const observeRtt = r.rtt_ms !== null && now - p.lastRttAt >= REPORT_LIMITS.rttEveryMs;
    if (observeRtt) p.lastRttAt = now;
    return { ok: true, observeRtt };
  }

  /** The peer must be another agent registered in the reporter's mesh. */
  private async checkPeer(session: Session, r: ConnectionReport): Promise<Verdict> {
    if (r.peer_id === r.agent_id) return 'unknown_peer';
    let peers = this.peers.get(session);
    if (!peers) {
      peers = new Map();
      this.peers.set(session, peers);
    }
    const now = this.core.now();
    const known = peers.get(r.peer_id);
    if (known && now - known.checkedAt < REPORT_LIMITS.peerCheckMs) return 'ok';
    if (!known && peers.size >= REPORT_LIMITS.maxPeers) {
      for (const [id, p] of peers) if (now - p.checkedAt >= REPORT_LIMITS.peerCheckMs) peers.delete(id);
      if (peers.size >= REPORT_LIMITS.maxPeers) return 'too_many_peers';
    }
    const local = this.core.local.get(r.peer_id);
    const mesh = local ? local.mesh : (await this.core.registry.get(r.peer_id).catch(() => undefined))?.mesh;
    if (mesh !== session.mesh) {
      peers.delete(r.peer_id);
      return 'unknown_peer';
    }
    if (known) known.checkedAt = now;
    else
      peers.set(r.peer_id, {
        checkedAt: now,
        state: undefined,
        bucket: { tokens: REPORT_LIMITS.stateBurst, at: now },
        lastRttAt: Number.NEGATIVE_INFINITY,
      });
    return 'ok';
  }
}
