import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AgentMetricsReport } from '../../protocol/signaling.js';
import type { ConnectionReport } from './registry.js';

const RTT_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 150, 200, 300, 500, 1000, 2500];

/**
 * The runbook's webrtc_* metrics, fed from agents' reports. `webrtc_rtt_milliseconds` is the name
 * the runbook's alert rules query; promtool's lint prefers base units, so `webrtc_rtt_seconds`
 * carries the same observations for new dashboards.
 */
export class SignalingMetrics {
  readonly registry = new Registry();
  private readonly c = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [this.registry] });
  readonly attempted = this.c('webrtc_connections_attempted_total', 'Peer connections agents started');
  readonly established = this.c(
    'webrtc_connections_established_total',
    'Peer connections that reached connected',
  );
  readonly failed = this.c('webrtc_connections_failed_total', 'Peer connections that failed');
  readonly dropped = this.c('webrtc_connections_dropped_total', 'Connected peer connections that went away');
  readonly turnFallback = this.c(
    'webrtc_turn_fallback_total',
    'Peer connections established through a TURN relay',
  );
  readonly messagesSent = this.c('webrtc_messages_sent_total', 'IFMessages agents sent');
  readonly messagesReceived = this.c('webrtc_messages_received_total', 'IFMessages agents received');
  readonly messageErrors = this.c(
    'webrtc_message_errors_total',
    'IFMessages agents failed to send or handle',
  );
  readonly signatureFailures = this.c(
    'webrtc_signature_verification_failures_total',
    'IFMessages dropped for a bad signature',
  );
  readonly dtlsFailures = this.c(
    'webrtc_dtls_validation_failures_total',
    'DTLS certificate validation failures',
  );
  readonly keyRotations = this.c('webrtc_srtp_key_rotations_total', 'Agent key rotations completed');
  readonly signalingErrors = this.c(
    'webrtc_signaling_errors_total',
    'Error frames sent to signaling clients',
    ['code'],
  );
  readonly unauthorized = this.c(
    'webrtc_unauthorized_attempts_total',
    'Refused registrations and admin calls',
  );
  readonly unauthorizedUnaudited = this.c(
    'webrtc_unauthorized_unaudited_total',
    'Refused admin calls over the audit rate limit: counted into a later witness entry, not each logged',
  );
  readonly registrations = this.c('webrtc_signaling_registrations_total', 'Successful agent registrations');
  readonly witnessKeyChanged = this.c(
    'ifmesh_witness_key_changed_total',
    'Times a known witness URL presented another key than the one held; its events wait in the spool',
    ['reporter'],
  );
  /**
   * Messages from the cluster store that this instance refused: no or a wrong HMAC, not the schema,
   * outside the clock window, or seen before. Any of them rising means something without the
   * cluster secret is publishing into Redis, or instances disagree on SIGNALING_CLUSTER_SECRET.
   */
  readonly clusterDropped = this.c(
    'webrtc_signaling_cluster_messages_dropped_total',
    'Cluster messages dropped (unsigned, bad_signature, malformed, stale, replayed, failed)',
    ['channel', 'reason'],
  );
  readonly totalConnections = new Gauge({
    name: 'webrtc_total_connections',
    help: 'Peer connections agents report as connected',
    registers: [this.registry],
  });
  readonly agents = new Gauge({
    name: 'webrtc_signaling_agents',
    help: 'Agents registered on this instance',
    registers: [this.registry],
  });
  readonly bandwidth = new Gauge({
    name: 'webrtc_bandwidth_bytes_per_second',
    help: 'Bandwidth an agent reports',
    labelNames: ['agent_id'],
    registers: [this.registry],
  });
  readonly memory = new Gauge({
    name: 'webrtc_memory_bytes',
    help: 'Resident memory an agent reports',
    labelNames: ['agent_id'],
    registers: [this.registry],
  });
  readonly cpuSeconds = this.c(
    'webrtc_cpu_seconds_total',
    "CPU seconds used by an agent's process, from its reports",
    ['agent_id'],
  );
  readonly rttMs = new Histogram({
    name: 'webrtc_rtt_milliseconds',
    help: 'Round-trip time agents report, in milliseconds',
    labelNames: ['connection_type'],
    buckets: RTT_BUCKETS_MS,
    registers: [this.registry],
  });
  readonly rttSeconds = new Histogram({
    name: 'webrtc_rtt_seconds',
    help: 'Round-trip time agents report',
    labelNames: ['connection_type'],
    buckets: RTT_BUCKETS_MS.map((b) => b / 1000),
    registers: [this.registry],
  });
  private readonly lastReports = new Map<string, AgentMetricsReport>();
  private connected = 0;

  connectionReport(prev: ConnectionReport | undefined, next: ConnectionReport): void {
    const was = prev?.state;
    if (
      (was === undefined || was === 'new' || was === 'closed' || was === 'failed') &&
      next.state !== 'new' &&
      next.state !== 'closed'
    ) {
      this.attempted.inc();
    }
    if (next.state === 'connected' && was !== 'connected') {
      this.established.inc();
      if (next.candidate_type === 'relay') this.turnFallback.inc();
      this.connected += 1;
    }
    if (was === 'connected' && next.state !== 'connected') {
      this.connected -= 1;
      if (next.state !== 'failed') this.dropped.inc();
    }
    if (next.state === 'failed' && was !== 'failed') this.failed.inc();
    this.totalConnections.set(this.connected);
    if (next.rtt_ms !== null) {
      const type = next.candidate_type === 'relay' ? 'relay' : 'p2p';
      this.rttMs.observe({ connection_type: type }, next.rtt_ms);
      this.rttSeconds.observe({ connection_type: type }, next.rtt_ms / 1000);
    }
  }

  /** Reports whose agent left: connected ones count as dropped. */
  forgotten(reports: ConnectionReport[]): void {
    for (const r of reports) {
      if (r.state === 'connected') {
        this.connected -= 1;
        this.dropped.inc();
      }
    }
    this.totalConnections.set(this.connected);
  }

  /** Agents send cumulative counters; a counter that went down means the agent restarted. */
  agentReport(agentId: string, r: AgentMetricsReport): void {
    const prev = this.lastReports.get(agentId) ?? {};
    const delta = (k: keyof AgentMetricsReport, counter: Counter) => {
      const now = r[k];
      if (now === undefined) return;
      const before = prev[k] ?? 0;
      counter.inc(now >= before ? now - before : now);
    };
    delta('messages_sent', this.messagesSent);
    delta('messages_received', this.messagesReceived);
    delta('message_errors', this.messageErrors);
    delta('signature_failures', this.signatureFailures);
    delta('dtls_failures', this.dtlsFailures);
    if (r.cpu_seconds !== undefined) {
      const before = prev.cpu_seconds ?? 0;
      this.cpuSeconds.inc(
        { agent_id: agentId },
        r.cpu_seconds >= before ? r.cpu_seconds - before : r.cpu_seconds,
      );
    }
    if (r.witness_key_changed !== undefined) {
      const before = prev.witness_key_changed ?? 0;
      const now = r.witness_key_changed;
      this.witnessKeyChanged.inc({ reporter: 'agent' }, now >= before ? now - before : now);
    }
    if (r.bytes_per_second !== undefined) this.bandwidth.set({ agent_id: agentId }, r.bytes_per_second);
    if (r.memory_bytes !== undefined) this.memory.set({ agent_id: agentId }, r.memory_bytes);
    this.lastReports.set(agentId, { ...prev, ...r });
  }

  agentLeft(agentId: string): void {
    this.lastReports.delete(agentId);
    this.bandwidth.remove({ agent_id: agentId });
    this.memory.remove({ agent_id: agentId });
    this.cpuSeconds.remove({ agent_id: agentId });
  }
}
