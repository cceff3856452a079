// The failover guide's four decision trees (and the runbook's memory diagnosis), declared once as
// data: each question node names the evidence it reads, answers from it, and names the next node
// per answer; each leaf names a root cause from the runbook's lists and its recommended actions.
// walkTree follows one path with real evidence and returns it step by step.

import { PLAIN_HTTP_TO_TLS } from '../../clients/http.js';
import type { ConnectionReport } from '../../services/signaling/registry.js';
import type { Evidence } from './evidence.js';
import { FINDING_ACTIONS } from './findings.js';

export type TreeId = 'connection-failure' | 'high-latency' | 'packet-loss' | 'security';
export type AnyTreeId = TreeId | 'memory';
export interface TreeStep {
  question: string;
  evidence: Record<string, unknown>;
  answer: string;
}
export interface TreeWalk {
  tree: AnyTreeId;
  path: TreeStep[];
  root_cause: { id: string; title: string } | null;
  actions: string[];
}
export type { Evidence } from './evidence.js';

export interface Subject {
  agent?: string;
  peer?: string;
}
interface Answered {
  evidence: Record<string, unknown>;
  answer: string;
}
export interface QuestionNode {
  question: string;
  /** Which evidence the question reads (shown in --help-like listings and the README). */
  reads: string[];
  ask(ev: Evidence, s: Subject): Promise<Answered>;
  next: Record<string, string>;
}
export interface Leaf {
  root_cause: { id: string; title: string } | null;
  actions: string[];
}
export interface Tree {
  title: string;
  /**
   * Its actions' AGENT and PEER are the subject's ids, written in by the walk (a drill copied
   * `ifmesh logs deploy-agent-PEER` as printed). Other trees' PEER is whoever the evidence names.
   */
  namesSubject?: boolean;
  start: string;
  nodes: Record<string, QuestionNode>;
  leaves: Record<string, Leaf>;
}

/** The runbook's thresholds: RTT > 500 ms on P2P or > 2000 ms on TURN, jitter > 100 ms, loss > 5 %. */
export const LIMITS = {
  rttP2pMs: 500,
  rttTurnMs: 2000,
  jitterMs: 100,
  lossRatio: 0.05,
  memoryBytes: 700 * 2 ** 20,
};
export type Limits = typeof LIMITS;
/** The runbook's limits as overridden for this walk (`--limit NAME=VALUE`). */
const lim = (ev: Evidence): Limits => ({ ...LIMITS, ...ev.sources.limits });

const yes = (b: boolean) => (b ? 'yes' : 'no');
const isRelay = (c: ConnectionReport) => c.candidate_type === 'relay';
const ofAgent = (cs: ConnectionReport[], agent?: string) =>
  cs.filter((c) => c.state === 'connected' && (agent === undefined || c.agent_id === agent));
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const meta = (e: Record<string, unknown>) => (e.metadata ?? {}) as Record<string, unknown>;
function need(s: Subject, k: 'agent' | 'peer'): string {
  const v = s[k];
  if (!v) throw new Error(`this tree needs the ${k}`);
  return v;
}

/** Whether the subject's agent (or peer) is registered: signaling's /agents on every instance. */
const registeredNode = (
  who: 'agent' | 'peer',
  question: string,
  next: QuestionNode['next'],
): QuestionNode => ({
  question,
  reads: ['signaling /agents (every instance)'],
  async ask(ev, s) {
    const id = need(s, who);
    const agents = await ev.agents();
    const hit = agents.find((a) => a.agent_id === id);
    return {
      evidence: { [who]: id, registered_agents: agents.length, instance: hit?.instance_url ?? null },
      answer: yes(Boolean(hit)),
    };
  },
  next,
});

const connectionFailure: Tree = {
  title: 'Tree 1: connection establishment failure',
  namesSubject: true,
  start: 'registered',
  nodes: {
    registered: registeredNode('agent', 'Agent registered on signaling server?', {
      yes: 'stun',
      no: 'signaling_health',
    }),
    signaling_health: {
      question: 'Signaling server down?',
      reads: ['signaling /health (every instance)'],
      async ask(ev) {
        const h = await ev.health();
        const none = h.every((i) => !i.up);
        // Instances that answered with a certificate this command does not trust, or with TLS on an
        // http:// URL, are not down: the fix is trust (--ca) or the URL, not a failover of running ones.
        const answer = !none
          ? 'no'
          : h.some((i) => i.answered?.code === PLAIN_HTTP_TO_TLS)
            ? 'TLS on an http:// URL'
            : h.some((i) => i.unverified)
              ? 'certificate not trusted'
              : 'yes';
        return { evidence: { instances: h }, answer };
      },
      next: {
        yes: 'signaling_down',
        no: 'cannot_register',
        'certificate not trusted': 'signaling_untrusted',
        'TLS on an http:// URL': 'signaling_plain_http',
      },
    },
    stun: {
      question: 'STUN server reachable?',
      reads: ['signaling /config stunServers', 'STUN Binding probe of each'],
      async ask(ev) {
        const probes = await ev.stun();
        // None configured is not "unreachable": agents then gather host (and relay) candidates, which
        // is enough on one network or a loopback lab, so the walk goes on to what they exchanged.
        // An empty list from no /config at all is not "none configured": the evidence says which.
        if (probes.length === 0) {
          const read = (await ev.config()) !== null;
          return {
            evidence: {
              stun: [],
              note: read
                ? 'no STUN server in /config stunServers: host and relay candidates only'
                : 'no signaling instance answered /config: the STUN servers are unknown',
            },
            answer: read ? 'none configured' : 'config unreadable',
          };
        }
        return { evidence: { stun: probes }, answer: yes(probes.some((p) => p.ok)) };
      },
      next: { yes: 'ice', no: 'stun_unreachable', 'none configured': 'ice', 'config unreadable': 'ice' },
    },
    ice: {
      question: 'ICE candidates exchanged?',
      reads: [
        'witness ice_candidate_sent (agent -> peer and peer -> agent, last 5 min)',
        'signaling /connections (the pair connected now)',
      ],
      async ask(ev, s) {
        const agent = need(s, 'agent');
        const peer = need(s, 'peer');
        const [out, back, connections] = await Promise.all([
          ev.witness({ event: 'ice_candidate_sent', agent_id: agent, peer_id: peer }, '-5m'),
          ev.witness({ event: 'ice_candidate_sent', agent_id: peer, peer_id: agent }, '-5m'),
          ev.connections(),
        ]);
        const count = (rs: Record<string, unknown>[]) =>
          rs.reduce((n, e) => n + (num(meta(e).count) ?? 0), 0);
        // A pair connected now exchanged its candidates, if longer ago than the witness window looks
        // (a drill's pair connected for 6 minutes read "the peer connection was never created").
        const connected = connections.some(
          (c) =>
            c.state === 'connected' &&
            ((c.agent_id === agent && c.peer_id === peer) || (c.agent_id === peer && c.peer_id === agent)),
        );
        return {
          evidence: {
            sent_by_agent: count(out),
            sent_by_peer: count(back),
            events: out.length + back.length,
            connected_now: connected,
          },
          answer: yes(connected || count(out) + count(back) > 0),
        };
      },
      next: { yes: 'p2p', no: 'no_ice_candidates' },
    },
    p2p: {
      question: 'Direct P2P connection possible?',
      reads: ['signaling /connections (the pair)', 'signaling /config turnFallbackTimeout'],
      async ask(ev, s) {
        const agent = need(s, 'agent');
        const peer = need(s, 'peer');
        const pair = (await ev.connections()).filter(
          (c) => (c.agent_id === agent && c.peer_id === peer) || (c.agent_id === peer && c.peer_id === agent),
        );
        const direct = pair.some((c) => c.state === 'connected' && c.candidate_type !== 'relay');
        return {
          evidence: {
            reports: pair,
            turn_fallback_timeout_ms: (await ev.config())?.turnFallbackTimeout ?? null,
          },
          answer: yes(direct),
        };
      },
      next: { yes: 'connected', no: 'peer_registered' },
    },
    // Not in the guide's tree: a peer that is gone explains a missing direct path before TURN does
    // (a drill's dead peer was diagnosed "no TURN server allocates", and failover turn suggested).
    peer_registered: registeredNode('peer', 'Peer registered on signaling server?', {
      yes: 'turn',
      no: 'peer_gone',
    }),
    turn: {
      question: 'TURN server reachable?',
      reads: ['signaling /config turnServers', 'TURN Allocate probe of each'],
      async ask(ev) {
        const probes = await ev.turn();
        return { evidence: { turn: probes }, answer: yes(probes.some((p) => p.ok)) };
      },
      next: { yes: 'p2p_blocked', no: 'turn_unavailable' },
    },
  },
  leaves: {
    signaling_untrusted: {
      root_cause: {
        id: 'signaling_certificate_untrusted',
        title: 'Signaling answers with a certificate this command does not trust',
      },
      actions: FINDING_ACTIONS.signaling_certificate_untrusted,
    },
    signaling_plain_http: {
      root_cause: {
        id: 'signaling_url_plain_http',
        title: 'Signaling speaks TLS on an http:// URL: the URL is wrong (use https://), the instances run',
      },
      actions: FINDING_ACTIONS.signaling_url_plain_http,
    },
    signaling_down: {
      root_cause: { id: 'signaling_down', title: 'Signaling server down' },
      actions: [
        'Find the dead instance: ifmesh status',
        'Restart it, or promote the nginx backup (Scenario B): ifmesh failover signaling --failed URL --action restart|promote-backup',
      ],
    },
    peer_gone: {
      root_cause: {
        id: 'peer_not_registered',
        title: 'The peer is not registered: down, or cannot register',
      },
      actions: [
        "Is the peer's process running (and restarted by the supervisor)? ifmesh status",
        "Read why it stopped or cannot register: ifmesh logs deploy-agent-PEER (or the peer host's agent log)",
        'Then walk its own registration: ifmesh troubleshoot connection-timeout PEER AGENT',
      ],
    },
    cannot_register: {
      root_cause: { id: 'agent_not_registered', title: 'Agent cannot register (signaling is up)' },
      actions: [
        'Check network connectivity and firewall rules between the agent and signaling (SIGNALING_HOST, SIGNALING_PORT)',
        'A blocked identity is refused at registration: ifmesh agents list',
        "Read the agent's registration errors (manual intervention): ifmesh logs AGENT",
      ],
    },
    stun_unreachable: {
      root_cause: { id: 'stun_unreachable', title: 'STUN server unreachable' },
      actions: [
        'Allow UDP to the STUN port outbound (e.g. ufw allow out 19302/udp), then probe every STUN server: ifmesh preflight',
        'Switch to or add alternate STUN servers in STUN_SERVERS (redundant entries)',
      ],
    },
    no_ice_candidates: {
      root_cause: {
        id: 'no_ice_candidates',
        title: 'No ICE candidates exchanged: the peer connection was never created',
      },
      actions: [
        'Check that the peer runs a mesh agent in the same mesh: ifmesh status',
        "Read the peer agent's log and the signaling relay errors: ifmesh logs PEER, ifmesh logs signaling-1",
      ],
    },
    connected: {
      root_cause: null,
      actions: ['None needed: a direct connection is established (watch it: ifmesh top)'],
    },
    p2p_blocked: {
      root_cause: {
        id: 'p2p_blocked',
        title: 'Network path blocked (firewall rules / severe NAT): relayed through TURN',
      },
      actions: [
        'The TURN relay carries it (Scenario A); see which pairs relay: ifmesh top',
        'Open the UDP range for peer-to-peer (ufw allow 5000:65535/udp), then check the pair again: ifmesh troubleshoot connection-timeout AGENT PEER',
        'Or relay everything as a fallback: ICE_TRANSPORT_POLICY=relay (rolled out with ifmesh canary --stage production --set ICE_TRANSPORT_POLICY=relay)',
      ],
    },
    turn_unavailable: {
      root_cause: {
        id: 'turn_unavailable',
        title: 'P2P blocked and no TURN server allocates (inadequate TURN capacity)',
      },
      actions: [
        'Failover to the secondary TURN server (Scenario A): ifmesh failover turn --failed URL --replacement URL',
        'Verify TURN_USERNAME and TURN_PASSWORD against every TURN_SERVERS entry (a real Allocate): ifmesh preflight',
        'If all TURN servers fail, declare it (manual intervention required): ifmesh incident turn-failure',
      ],
    },
  },
};

async function worstConnection(ev: Evidence, agent: string) {
  const cs = ofAgent(await ev.connections(), agent);
  const score = (c: ConnectionReport) =>
    (c.rtt_ms ?? 0) / (isRelay(c) ? lim(ev).rttTurnMs : lim(ev).rttP2pMs);
  return { all: cs, worst: [...cs].sort((a, b) => score(b) - score(a))[0] };
}

async function rttSeries(ev: Evidence, agent: string): Promise<number[]> {
  const q = await ev.witness({ event: 'connection_quality_update', agent_id: agent }, '-5m');
  return q.map((e) => num(meta(e).roundTripTime)).filter((v): v is number => v !== null);
}

const highLatency: Tree = {
  title: 'Tree 2: high latency',
  start: 'high',
  nodes: {
    high: {
      question: 'RTT above 500 ms (P2P) or 2000 ms (TURN)?',
      reads: ['signaling /connections (the agent)', 'witness connection_quality_update (5 min)'],
      async ask(ev, s) {
        const agent = need(s, 'agent');
        const { all, worst } = await worstConnection(ev, agent);
        const rtts = await rttSeries(ev, agent);
        const last = worst?.rtt_ms ?? null;
        const limit = worst && isRelay(worst) ? lim(ev).rttTurnMs : lim(ev).rttP2pMs;
        const recent = Math.max(last ?? 0, ...rtts.slice(-5));
        return {
          evidence: {
            connections: all.length,
            worst: worst ?? null,
            witness_rtt_ms: rtts.slice(-10),
            limit_ms: limit,
          },
          answer: yes(recent > limit),
        };
      },
      next: { yes: 'type', no: 'normal' },
    },
    type: {
      question: 'P2P or TURN connection?',
      reads: ['signaling /connections candidate_type'],
      async ask(ev, s) {
        const { worst } = await worstConnection(ev, need(s, 'agent'));
        return {
          evidence: { peer: worst?.peer_id ?? null, candidate_type: worst?.candidate_type ?? null },
          answer: worst && isRelay(worst) ? 'turn' : 'p2p',
        };
      },
      next: { turn: 'turn_load', p2p: 'bandwidth_check' },
    },
    turn_load: {
      question: 'TURN server capacity high (Allocate refused or slow)?',
      reads: ['TURN Allocate probe of each server'],
      async ask(ev) {
        const probes = await ev.turn();
        const strained = probes.length === 0 || probes.some((p) => !p.ok || (p.rtt_ms ?? 0) > 250);
        return { evidence: { turn: probes }, answer: strained ? 'high' : 'low' };
      },
      next: { high: 'turn_capacity', low: 'others' },
    },
    others: {
      question: 'Are other peers also affected?',
      reads: ['signaling /connections of the other agents'],
      async ask(ev, s) {
        const agent = need(s, 'agent');
        const slow = ofAgent(await ev.connections()).filter(
          (c) =>
            c.agent_id !== agent &&
            c.peer_id !== agent &&
            (c.rtt_ms ?? 0) > (isRelay(c) ? lim(ev).rttTurnMs : lim(ev).rttP2pMs),
        );
        return { evidence: { slow_connections_elsewhere: slow.length }, answer: yes(slow.length > 0) };
      },
      next: { yes: 'regional', no: 'jitter' },
    },
    bandwidth_check: {
      question: 'Bandwidth exhaustion?',
      reads: ['witness bandwidth_update (1 min)'],
      async ask(ev, s) {
        const b = (await ev.witness({ event: 'bandwidth_update', agent_id: need(s, 'agent') }, '-1m')).at(-1);
        const used = num(b && meta(b).bytesPerSecond);
        const cap = num(b && meta(b).capBytesPerSecond);
        return {
          evidence: { bytes_per_second: used, cap_bytes_per_second: cap },
          answer: yes(used !== null && cap !== null && used >= 0.9 * cap),
        };
      },
      next: { yes: 'bandwidth', no: 'jitter' },
    },
    jitter: {
      question: 'Jitter also high (> 100 ms)?',
      reads: ['witness connection_quality_update RTT spread (5 min)'],
      async ask(ev, s) {
        const rtts = await rttSeries(ev, need(s, 'agent'));
        const mean = rtts.reduce((a, b) => a + b, 0) / (rtts.length || 1);
        const jitter = Math.sqrt(rtts.reduce((a, b) => a + (b - mean) ** 2, 0) / (rtts.length || 1));
        return {
          evidence: { samples: rtts.length, jitter_ms: Math.round(jitter) },
          answer: yes(jitter > lim(ev).jitterMs),
        };
      },
      next: { yes: 'unstable', no: 'consistent' },
    },
  },
  leaves: {
    normal: {
      root_cause: null,
      actions: ['None needed: RTT within the runbook limits; keep monitoring: ifmesh monitoring check'],
    },
    turn_capacity: {
      root_cause: { id: 'turn_overloaded', title: 'TURN server capacity exhausted' },
      actions: [
        'Failover to the secondary TURN server (Scenario A): ifmesh failover turn --failed URL --replacement URL',
        'Add TURN servers to TURN_SERVERS',
      ],
    },
    regional: {
      root_cause: {
        id: 'regional_network_issue',
        title: 'Network path issue on the relay: a regional issue',
      },
      actions: [
        'Several peers are affected: declare it and escalate to the network team: ifmesh incident p2',
        'Monitor TURN health (every TURN_SERVERS entry allocates): ifmesh preflight',
      ],
    },
    bandwidth: {
      root_cause: { id: 'bandwidth_exhaustion', title: 'Bandwidth exhaustion on the direct path' },
      actions: [
        'Enable bandwidth adaptation on every agent (POST /config/bandwidth, 1 Mbit/s each): ifmesh incident p2',
      ],
    },
    unstable: {
      root_cause: { id: 'network_instability', title: 'Network instability (jitter), not just latency' },
      actions: [
        'Reduce the message rate: bandwidth adaptation caps every agent (POST /config/bandwidth): ifmesh incident p2',
        'Follow the RTT spread per connection: ifmesh top',
      ],
    },
    consistent: {
      root_cause: {
        id: 'consistent_high_latency',
        title: 'Consistent high latency (network congestion or a peer-specific path)',
      },
      actions: [
        'Monitor; escalate if persistent over 30 minutes: ifmesh monitoring check, then ifmesh incident p2',
        'Option: a TURN relay for a different path: ICE_TRANSPORT_POLICY=relay (ifmesh canary --stage production --set ICE_TRANSPORT_POLICY=relay)',
      ],
    },
  },
};

async function lossy(ev: Evidence, agent: string) {
  const cs = (await ev.connections()).filter((c) => c.agent_id === agent || c.peer_id === agent);
  const quality = await ev.witness({ event: 'connection_quality_update', agent_id: agent }, '-5m');
  const witnessLoss = Math.max(0, ...quality.slice(-10).map((e) => num(meta(e).lossRatio) ?? 0));
  const outbound = cs.filter((c) => c.agent_id === agent && (c.loss_ratio ?? 0) > lim(ev).lossRatio);
  const inbound = cs.filter((c) => c.peer_id === agent && (c.loss_ratio ?? 0) > lim(ev).lossRatio);
  return { cs, outbound, inbound, witnessLoss };
}

const packetLoss: Tree = {
  title: 'Tree 3: packet loss',
  start: 'loss',
  nodes: {
    loss: {
      question: 'Packet loss above 5 %?',
      reads: ['signaling /connections loss_ratio', 'witness connection_quality_update lossRatio (5 min)'],
      async ask(ev, s) {
        const l = await lossy(ev, need(s, 'agent'));
        const worst = Math.max(l.witnessLoss, ...l.cs.map((c) => c.loss_ratio ?? 0));
        return {
          evidence: {
            worst_loss_ratio: worst,
            lossy: [...l.outbound, ...l.inbound].map((c) => ({
              agent_id: c.agent_id,
              peer_id: c.peer_id,
              loss_ratio: c.loss_ratio,
              candidate_type: c.candidate_type,
            })),
          },
          answer: yes(worst > lim(ev).lossRatio),
        };
      },
      next: { yes: 'type', no: 'normal' },
    },
    type: {
      question: "What's the current connection type?",
      reads: ['signaling /connections candidate_type', 'witness turn_connection_detected'],
      async ask(ev, s) {
        const agent = need(s, 'agent');
        const l = await lossy(ev, agent);
        const bad = [...l.outbound, ...l.inbound];
        const relay = (bad.length ? bad : ofAgent(l.cs, agent)).some(isRelay);
        const turnEvents = await ev.witness({ event: 'turn_connection_detected', agent_id: agent }, '-1h');
        return {
          evidence: {
            candidate_types: [...new Set(bad.map((c) => c.candidate_type))],
            turn_connection_detected: turnEvents.length,
          },
          answer: relay ? 'turn' : 'p2p',
        };
      },
      next: { turn: 'turn_health', p2p: 'congestion' },
    },
    turn_health: {
      question: 'TURN server CPU/memory high (Allocate refused or slow)?',
      reads: ['TURN Allocate probe of each server'],
      async ask(ev) {
        const probes = await ev.turn();
        return {
          evidence: { turn: probes },
          answer: probes.length === 0 || probes.some((p) => !p.ok || (p.rtt_ms ?? 0) > 250) ? 'high' : 'low',
        };
      },
      next: { high: 'turn_overloaded', low: 'direction' },
    },
    direction: {
      question: 'Packet loss direction?',
      reads: ['signaling /connections: the agent about its peers (outbound), its peers about it (inbound)'],
      async ask(ev, s) {
        const l = await lossy(ev, need(s, 'agent'));
        const o = l.outbound.length > 0;
        const i = l.inbound.length > 0;
        return {
          evidence: { outbound: l.outbound.length, inbound: l.inbound.length },
          answer: o && i ? 'both' : i ? 'inbound' : 'outbound',
        };
      },
      next: { both: 'relay_both', inbound: 'relay_inbound', outbound: 'relay_outbound' },
    },
  },
  leaves: {
    normal: {
      root_cause: null,
      actions: ['Monitor but may not need action; continue monitoring for degradation: ifmesh top'],
    },
    congestion: {
      root_cause: { id: 'congested_direct_path', title: 'Congested network path (direct P2P)' },
      actions: [
        'Reduce bitrate: bandwidth adaptation on every agent (POST /config/bandwidth): ifmesh incident p2',
        'Find the lossy pairs and their direction: ifmesh top',
      ],
    },
    turn_overloaded: {
      root_cause: { id: 'turn_overloaded', title: 'TURN server overloaded' },
      actions: [
        'Failover to the secondary TURN server: ifmesh failover turn --failed URL --replacement URL',
        'Add TURN servers to TURN_SERVERS and balance load across them',
      ],
    },
    relay_both: {
      root_cause: {
        id: 'relay_network_loss',
        title: 'Network issue to/from TURN: severe congestion (both directions)',
      },
      actions: [
        'Reduce the bitrate everywhere (bandwidth adaptation, 1 Mbit/s per agent): ifmesh incident p2',
        'Monitor TURN health (every TURN_SERVERS entry allocates): ifmesh preflight',
      ],
    },
    relay_inbound: {
      root_cause: {
        id: 'relay_network_loss',
        title: 'Network issue to/from TURN: inbound loss (peer sending high bitrate)',
      },
      actions: [
        "Reduce the peer's bitrate (bandwidth adaptation): ifmesh incident p2",
        'Monitor TURN health (every TURN_SERVERS entry allocates): ifmesh preflight',
      ],
    },
    relay_outbound: {
      root_cause: {
        id: 'relay_network_loss',
        title: 'Network issue to/from TURN: outbound loss (congested toward the peer)',
      },
      actions: [
        'Reduce the local bitrate (bandwidth adaptation): ifmesh incident p2',
        'Monitor TURN health (every TURN_SERVERS entry allocates): ifmesh preflight',
      ],
    },
  },
};

const security: Tree = {
  title: 'Tree 4: security event',
  start: 'type',
  nodes: {
    type: {
      question: 'Event type?',
      reads: [
        'witness webrtc_cert_validated / dtls_validation_failed (1 h)',
        'signaling TLS certificate',
        'witness signature_verification_failed (1 h)',
        "witness signaling_auth_failure (1 h; code blocked, an operator's block refusing its identity, apart)",
      ],
      async ask(ev, s) {
        const scope = s.agent ? { agent_id: s.agent } : {};
        const [certs, dtls, sigs, auth, tls] = await Promise.all([
          ev.witness({ event: 'webrtc_cert_validated', ...scope }, '-1h'),
          ev.witness({ event: 'dtls_validation_failed', ...scope }, '-1h'),
          ev.witness({ event: 'signature_verification_failed' }, '-1h'),
          ev.witness({ event: 'signaling_auth_failure' }, '-1h'),
          ev.certificates(),
        ]);
        const badCerts = certs.filter((e) => meta(e).valid === false || meta(e).self_signed === true);
        const selfSignedTls = ev.sources.production && tls.some((c) => c.self_signed || c.expired);
        // A blocked identity's own reconnects are refused with code `blocked`: the operator's block
        // at work, not an attempt on anyone (a drill's block and unblock of agent-3 read as
        // "unauthorized connection attempts" on a healthy pair). Shown apart, never the finding.
        const blocked = auth.filter((e) => meta(e).code === 'blocked');
        const unauthorized = auth.filter((e) => meta(e).code !== 'blocked');
        const counts = {
          cert_events_flagged: badCerts.length,
          dtls_validation_failed: dtls.length,
          tls_certificates: tls,
          signature_verification_failed: sigs.length,
          signaling_auth_failure: unauthorized.length,
          refused_blocked_by_operator: blocked.length,
        };
        const answer =
          badCerts.length || dtls.length || selfSignedTls
            ? 'dtls'
            : sigs.length
              ? 'signature'
              : unauthorized.length
                ? 'unauthorized'
                : 'none';
        return { evidence: counts, answer };
      },
      next: {
        dtls: 'self_signed_check',
        signature: 'signature_spread',
        unauthorized: 'unauthorized',
        none: 'none',
      },
    },
    self_signed_check: {
      question: 'Self-signed certificate in production?',
      reads: [
        'configuration PRODUCTION_MODE, ALLOW_SELF_SIGNED_CERTS',
        'witness webrtc_cert_validated self_signed',
        'signaling TLS certificate',
      ],
      async ask(ev) {
        const flagged = await ev.witness(
          { event: 'webrtc_cert_validated', 'metadata.self_signed': true },
          '-1h',
        );
        const tls = (await ev.certificates()).filter((c) => c.self_signed);
        const { production, allowSelfSigned } = ev.sources;
        return {
          evidence: {
            production_mode: production,
            allow_self_signed_certs: allowSelfSigned,
            self_signed_cert_events: flagged.length,
            self_signed_tls: tls.map((c) => ({ url: c.url, subject: c.subject })),
          },
          answer: yes(production && (flagged.length > 0 || tls.length > 0)),
        };
      },
      next: { yes: 'self_signed', no: 'expiry' },
    },
    expiry: {
      question: 'Certificate expired?',
      reads: ['signaling TLS certificate validity', 'witness webrtc_cert_validated expired'],
      async ask(ev) {
        const tls = await ev.certificates();
        const flagged = await ev.witness({ event: 'webrtc_cert_validated', 'metadata.expired': true }, '-1h');
        return {
          evidence: {
            certificates: tls.map((c) => ({ url: c.url, valid_to: c.valid_to })),
            expired_events: flagged.length,
          },
          answer: yes(tls.some((c) => c.expired) || flagged.length > 0),
        };
      },
      next: { yes: 'expired', no: 'fingerprint' },
    },
    signature_spread: {
      question: 'Signature failures: single instance, one peer, or across peers?',
      reads: ['witness signature_verification_failed grouped by sending peer (1 h)'],
      async ask(ev) {
        const sigs = await ev.witness({ event: 'signature_verification_failed' }, '-1h');
        const byPeer: Record<string, number> = {};
        for (const e of sigs) {
          const p = String(e.peer_id ?? 'unknown');
          byPeer[p] = (byPeer[p] ?? 0) + 1;
        }
        const peers = Object.keys(byPeer);
        const answer = sigs.length <= 1 ? 'single' : peers.length === 1 ? 'one_peer' : 'across_peers';
        return { evidence: { failures: sigs.length, by_peer: byPeer }, answer };
      },
      next: { single: 'single_signature', one_peer: 'isolate_peer', across_peers: 'p1' },
    },
  },
  leaves: {
    none: {
      root_cause: null,
      actions: ['No security event in the last hour: nothing to do (the counters: ifmesh monitoring check)'],
    },
    self_signed: {
      root_cause: { id: 'self_signed_in_production', title: 'Self-signed certificate in production' },
      actions: [
        'Deploy a proper CA certificate in SIGNALING_TLS_CERT and SIGNALING_TLS_KEY; set ALLOW_SELF_SIGNED_CERTS=false',
        'Rotate it onto every signaling instance, one at a time (Scenario D): ifmesh failover cert',
      ],
    },
    expired: {
      root_cause: { id: 'certificate_expired', title: 'Certificate expired' },
      actions: [
        'Rotate the certificate (Scenario D: certbot renew, then signaling restarted one instance at a time): ifmesh failover cert',
        'Check the new one (expiry, chain, key): ifmesh certs check',
      ],
    },
    fingerprint: {
      root_cause: { id: 'invalid_fingerprint', title: 'Invalid DTLS fingerprint (or clock skew)' },
      actions: [
        'Investigate the peer connection state: ifmesh witness query --event connection_state_changed --since 1h',
        'Check clock synchronisation (timedatectl); the agents accept ±30 s: ifmesh witness query --event signature_verification_failed --since 1h',
      ],
    },
    single_signature: {
      root_cause: { id: 'single_signature_failure', title: 'Single signature verification failure' },
      actions: ['Log and monitor; no immediate action: ifmesh monitoring check'],
    },
    isolate_peer: {
      root_cause: {
        id: 'repeated_signature_failures_one_peer',
        title: 'Repeated signature failures from one peer',
      },
      actions: [
        'Isolate the peer: ifmesh agents block PEER --reason signature-failures',
        'Investigate; escalate to security team review: ifmesh incident security',
      ],
    },
    p1: {
      root_cause: {
        id: 'signature_failures_across_peers',
        title: 'Signature failures across peers: possible MITM attack',
      },
      actions: [
        'CRITICAL: declare a P1 emergency incident: ifmesh incident p1',
        'Emergency key rotation (Scenario E): ifmesh failover keys --incident-id ID',
        'Notify the security team (PAGERDUTY_INTEGRATION_KEY, SLACK_WEBHOOK_URL): ifmesh incident security',
      ],
    },
    unauthorized: {
      root_cause: { id: 'unauthorized_connection_attempt', title: 'Unauthorized connection attempts' },
      actions: [
        'Block the peer: ifmesh agents block ID --reason unauthorized',
        'Escalate to security: ifmesh incident security',
      ],
    },
  },
};

const memory: Tree = {
  title: 'Runbook issue 4: high memory usage',
  start: 'connections',
  nodes: {
    connections: {
      question: 'More open connections than twice the mesh needs (connection leak)?',
      reads: ['signaling /stats connections', 'signaling /agents'],
      async ask(ev, s) {
        const open = ofAgent(await ev.connections(), s.agent).length;
        const n = (await ev.agents()).length;
        const expected = s.agent ? Math.max(0, n - 1) : (n * (n - 1)) / 2;
        return {
          evidence: { open_connections: open, agents: n, expected },
          answer: yes(open > 2 * expected),
        };
      },
      next: { yes: 'leak', no: 'high' },
    },
    high: {
      question: 'Memory above 700 MB or growing?',
      reads: ['witness memory_usage_update (1 h)', 'signaling /stats memory_rss_bytes'],
      async ask(ev, s) {
        const q = await ev.witness(
          { event: 'memory_usage_update', ...(s.agent ? { agent_id: s.agent } : {}) },
          '-1h',
        );
        const mb = q
          .map((e) => num(meta(e).memory_bytes))
          .filter((v): v is number => v !== null)
          .slice(-10);
        const signaling = (await ev.stats()).map((x) => ({
          url: x.url,
          memory_mb: Math.floor(x.memory_rss_bytes / 2 ** 20),
        }));
        const over = [...mb, ...(await ev.stats()).map((x) => x.memory_rss_bytes)].some(
          (b) => b > lim(ev).memoryBytes,
        );
        return {
          evidence: { trend_mb: mb.map((b) => Math.floor(b / 2 ** 20)), signaling },
          answer: yes(over),
        };
      },
      next: { yes: 'buffering', no: 'normal' },
    },
  },
  leaves: {
    leak: {
      root_cause: { id: 'connection_leak', title: 'Connection leak (connections not properly closed)' },
      actions: [
        'Find the agent holding more connections than peers: ifmesh top',
        'Restart it to reclaim memory (stop its pid from ifmesh status; ifmesh up starts what is not running)',
      ],
    },
    buffering: {
      root_cause: { id: 'large_message_buffering', title: 'Large message buffering or excessive logging' },
      actions: [
        'Throttle the senders so queues drain (bandwidth adaptation, 1 Mbit/s per agent): ifmesh incident p2',
        'Rotate the logs now (logrotate, witness cleanup): ifmesh maintenance daily',
      ],
    },
    normal: { root_cause: null, actions: ['Memory within limits: nothing to do (per agent: ifmesh top)'] },
  },
};

export const TREES: Record<AnyTreeId, Tree> = {
  'connection-failure': connectionFailure,
  'high-latency': highLatency,
  'packet-loss': packetLoss,
  security,
  memory,
};

function withSubject(action: string, s: Subject): string {
  return action.replace(/\b(AGENT|PEER)\b/g, (w) => (w === 'AGENT' ? s.agent : s.peer) ?? w);
}

/** Follows `tree` from its start with real evidence until a leaf; at most one visit per node. */
export async function walkTree(tree: AnyTreeId, subject: Subject, ev: Evidence): Promise<TreeWalk> {
  const t = TREES[tree];
  const path: TreeStep[] = [];
  let at = t.start;
  for (let hops = 0; hops <= Object.keys(t.nodes).length; hops++) {
    const node = t.nodes[at];
    if (!node) {
      const leaf = t.leaves[at];
      if (!leaf) throw new Error(`tree ${tree}: no node or leaf ${at}`);
      const actions = t.namesSubject ? leaf.actions.map((a) => withSubject(a, subject)) : leaf.actions;
      return { tree, path, root_cause: leaf.root_cause, actions };
    }
    const { evidence, answer } = await node.ask(ev, subject);
    path.push({ question: node.question, evidence, answer });
    const next = node.next[answer];
    if (!next) throw new Error(`tree ${tree}: node ${at} has no branch for ${answer}`);
    at = next;
  }
  throw new Error(`tree ${tree} did not reach a leaf`);
}
