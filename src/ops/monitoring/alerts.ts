// The runbook's eight Prometheus alert rules ("Alert Rules (Prometheus)"), with its thresholds taken
// from Thresholds and three of its expressions corrected so that they can fire at all:
// - histogram_quantile needs the _bucket series and a rate(), summed by `le`;
// - TURN usage divides by connections established (an increase() of a gauge means nothing);
// - CPU reads webrtc_cpu_seconds_total, the counter agents report (the runbook's name did not exist);
// - memory compares MiB with MiB (the runbook divided by 1024³ and compared with 0.7 GiB).
// Three rules the runbook's list lacks, for what it checks elsewhere: IF.witness down (its scrape
// job), and the TLS certificate under its renewal threshold ("Certificate Expiration < 7 days,
// checked every 6 hours": Prometheus evaluates it every interval instead) and under one day.
import type { Thresholds } from './thresholds.js';

/** The signaling server's certificate expiry (its notAfter, Unix seconds), exported only over TLS. */
export const CERT_EXPIRY_METRIC = 'webrtc_tls_certificate_expiry_timestamp_seconds';

export interface AlertDef {
  name: string;
  expr: string;
  /** The runbook's `for:`; export can shorten every one with --for. */
  for: string;
  severity: 'critical' | 'warning';
  summary: string;
  /** What it means, for README and the rule's description. */
  meaning: string;
  /** The ifmesh command an on-call engineer runs first. */
  command: string;
  /** Every metric name the expression reads (cross-checked against the live exposition). */
  metrics: string[];
  /** Exported only by an instance serving TLS: a plain-HTTP instance has no such series. */
  tlsOnly?: boolean;
}

const pct = (r: number) => `${Math.round(r * 1000) / 10}%`;

export function alertDefs(t: Thresholds): AlertDef[] {
  return [
    {
      name: 'WebRTCConnectionFailureRate',
      expr: `(increase(webrtc_connections_failed_total[5m]) / increase(webrtc_connections_attempted_total[5m])) > ${t.connection_failure_ratio}`,
      for: '5m',
      severity: 'warning',
      summary: `WebRTC connection failure rate exceeds ${pct(t.connection_failure_ratio)}`,
      meaning:
        'Agents start peer connections that end failed: ICE finds no path, or a peer died and healing gave up.',
      command: 'ifmesh monitoring check',
      metrics: ['webrtc_connections_failed_total', 'webrtc_connections_attempted_total'],
    },
    {
      name: 'WebRTCHighTURNUsage',
      expr: `(increase(webrtc_turn_fallback_total[5m]) / increase(webrtc_connections_established_total[5m])) > ${t.turn_fallback_ratio}`,
      for: '5m',
      severity: 'warning',
      summary: `TURN fallback usage exceeds ${pct(t.turn_fallback_ratio)}`,
      meaning:
        'Too many connections go through a TURN relay instead of peer to peer: more latency and relay bandwidth.',
      command: 'ifmesh top',
      metrics: ['webrtc_turn_fallback_total', 'webrtc_connections_established_total'],
    },
    {
      name: 'WebRTCHighLatency',
      expr: `histogram_quantile(0.95, sum by (le) (rate(webrtc_rtt_milliseconds_bucket{connection_type="p2p"}[5m]))) > ${t.rtt_p2p_p95_ms}`,
      for: '10m',
      severity: 'warning',
      summary: `P2P latency P95 exceeds ${t.rtt_p2p_p95_ms}ms`,
      meaning:
        'Round trips between directly connected agents are slow: a congested network or overloaded agents.',
      command: 'ifmesh verify --message-exchange',
      metrics: ['webrtc_rtt_milliseconds_bucket'],
    },
    {
      name: 'WebRTCDTLSValidationFailure',
      expr: 'increase(webrtc_dtls_validation_failures_total[5m]) > 0',
      for: '1m',
      severity: 'critical',
      summary: 'DTLS certificate validation failures detected',
      meaning:
        "A peer's DTLS certificate did not match its signalled fingerprint: a misconfiguration or an attack.",
      command: 'ifmesh monitoring check',
      metrics: ['webrtc_dtls_validation_failures_total'],
    },
    {
      name: 'WebRTCSignatureVerificationFailure',
      expr: 'increase(webrtc_signature_verification_failures_total[5m]) > 0',
      for: '1m',
      severity: 'critical',
      summary: 'Message signature verification failures',
      meaning:
        'An agent received IFMessages whose Ed25519 signature does not match the sender: a wrong or stolen key.',
      command: 'ifmesh witness query --event signature_verification_failed --since 1h',
      metrics: ['webrtc_signature_verification_failures_total'],
    },
    {
      name: 'WebRTCHighMemoryUsage',
      expr: `webrtc_memory_bytes / 1024 / 1024 > ${t.memory_mb}`,
      for: '5m',
      severity: 'warning',
      summary: `WebRTC memory usage exceeds ${t.memory_mb}MB`,
      meaning: 'An agent process holds more memory than expected: a leak or too many peers; risk of OOM.',
      command: 'ifmesh top',
      metrics: ['webrtc_memory_bytes'],
    },
    {
      name: 'WebRTCHighCPUUsage',
      expr: `rate(webrtc_cpu_seconds_total[5m]) > ${t.cpu_ratio}`,
      for: '5m',
      severity: 'warning',
      summary: `WebRTC CPU usage exceeds ${pct(t.cpu_ratio)}`,
      meaning: "An agent's process uses most of a core: performance degrades (signing, DTLS, SCTP).",
      command: 'ifmesh top',
      metrics: ['webrtc_cpu_seconds_total'],
    },
    {
      name: 'WebRTCSignalingServerDown',
      expr: 'up{job="signaling-server"} == 0',
      for: '2m',
      severity: 'critical',
      summary: 'Signaling server is down',
      meaning:
        'Prometheus cannot scrape a signaling instance: new connections cannot be established through it.',
      command: 'ifmesh status',
      metrics: [],
    },
    {
      name: 'WebRTCWitnessDown',
      expr: 'up{job="if-witness"} == 0',
      for: '2m',
      severity: 'critical',
      summary: 'IF.witness audit service is down',
      meaning:
        "Prometheus cannot scrape IF.witness: audit events wait in their producers' spools, and procedures cannot read the audit trail.",
      command: 'ifmesh status',
      metrics: [],
    },
    {
      name: 'WebRTCCertificateExpiringSoon',
      expr: `(${CERT_EXPIRY_METRIC} - time()) / 86400 < ${t.certificate_days}`,
      for: '10m',
      severity: 'warning',
      summary: `Signaling TLS certificate expires in less than ${t.certificate_days} days`,
      meaning:
        "The certificate signaling serves is under the runbook's renewal threshold: renew it before agents refuse it.",
      command: `ifmesh certs rotate --if-expiring ${t.certificate_days}d`,
      metrics: [CERT_EXPIRY_METRIC],
      tlsOnly: true,
    },
    {
      name: 'WebRTCCertificateExpiresWithinADay',
      expr: `(${CERT_EXPIRY_METRIC} - time()) / 86400 < 1`,
      for: '10m',
      severity: 'critical',
      summary: 'Signaling TLS certificate expires within a day (or has expired)',
      meaning:
        'Signaling will soon serve (or serves) an expired certificate: every new TLS connection fails.',
      command: 'ifmesh failover cert',
      metrics: [CERT_EXPIRY_METRIC],
      tlsOnly: true,
    },
  ];
}
