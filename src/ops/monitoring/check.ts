// `ifmesh monitoring check`: the runbook's "Key Metrics to Track" tables evaluated against the live
// mesh, one row per metric. A metric the mesh cannot measure is `n/a` with the reason, never ok.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { certificateWindow } from '../certs/check.js';
import type { MeshSample } from './collect.js';
import { histogramQuantile, type Sample, sum } from './exposition.js';
import type { Thresholds } from './thresholds.js';

export type RowStatus = 'ok' | 'alert' | 'n/a';

export interface CheckRow {
  id: string;
  metric: string;
  value: number | null;
  unit: string;
  threshold: string;
  status: RowStatus;
  detail?: string;
}

export interface CheckReport {
  ok: boolean;
  checked_at: string;
  instances: MeshSample['instances'];
  witness: { url: string; reachable: boolean } | null;
  rows: CheckRow[];
  alerts: string[];
}

const round = (v: number, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;

function row(
  id: string,
  metric: string,
  value: number | null,
  unit: string,
  threshold: string,
  breached: ((v: number) => boolean) | null,
  detail?: string,
): CheckRow {
  const status: RowStatus = value === null || breached === null ? 'n/a' : breached(value) ? 'alert' : 'ok';
  return {
    id,
    metric,
    value: value === null ? null : round(value),
    unit,
    threshold,
    status,
    ...(detail ? { detail } : {}),
  };
}

/** Per-agent CPU use as a fraction of one core, from two samples whose counters advanced. */
function cpuRatios(prev: MeshSample | undefined, cur: MeshSample): Map<string, number> {
  const out = new Map<string, number>();
  if (!prev) return out;
  const dt = (cur.taken_at - prev.taken_at) / 1000;
  if (dt <= 0) return out;
  const seconds = (s: Sample[]) => {
    const m = new Map<string, number>();
    for (const x of s)
      if (x.name === 'webrtc_cpu_seconds_total' && x.labels.agent_id)
        m.set(x.labels.agent_id, (m.get(x.labels.agent_id) ?? 0) + x.value);
    return m;
  };
  const before = seconds(prev.samples);
  for (const [agent, now] of seconds(cur.samples)) {
    const was = before.get(agent);
    if (was !== undefined && now > was) out.set(agent, (now - was) / dt);
  }
  return out;
}

function certificateDays(file: string | undefined, now: number): { days: number | null; detail: string } {
  if (!file) return { days: null, detail: 'no SIGNALING_TLS_CERT configured' };
  try {
    const cert = new X509Certificate(readFileSync(file));
    return { days: (certificateWindow(cert, now).notAfter - now) / 86_400_000, detail: file };
  } catch (err) {
    return { days: null, detail: `cannot read ${file}: ${(err as Error).message}` };
  }
}

export function evaluateMesh(
  cur: MeshSample,
  t: Thresholds,
  opts: { prev?: MeshSample | undefined; tlsCert?: string | undefined } = {},
): CheckReport {
  const s = cur.samples;
  const attempted = sum(s, 'webrtc_connections_attempted_total');
  const established = sum(s, 'webrtc_connections_established_total');
  const failed = sum(s, 'webrtc_connections_failed_total');
  const turn = sum(s, 'webrtc_turn_fallback_total');
  const connected = cur.connections.filter((c) => c.state === 'connected');
  const relayed = connected.filter((c) => c.candidate_type === 'relay');
  const failedNow = cur.connections.filter((c) => c.state === 'failed');
  const sent = sum(s, 'webrtc_messages_sent_total');
  const received = sum(s, 'webrtc_messages_received_total');
  const memory = s.filter((x) => x.name === 'webrtc_memory_bytes');
  const maxMemory = memory.reduce<Sample | undefined>((m, x) => (!m || x.value > m.value ? x : m), undefined);
  const cpu = cpuRatios(opts.prev, cur);
  const maxCpu = [...cpu].sort((a, b) => b[1] - a[1])[0];
  const cert = certificateDays(opts.tlsCert, cur.taken_at);
  const w = cur.witness?.counts;
  const rows: CheckRow[] = [
    row(
      'connection_success_rate',
      'Connection success rate',
      attempted ? established / attempted : null,
      'ratio',
      `>= ${round(1 - t.connection_failure_ratio)}`,
      (v) => v < 1 - t.connection_failure_ratio,
      attempted ? `${established} of ${attempted} attempts` : 'no connection attempted yet',
    ),
    row(
      'p2p_connection_rate',
      'P2P connection rate',
      connected.length ? 1 - relayed.length / connected.length : null,
      'ratio',
      `>= ${round(1 - t.turn_fallback_ratio)}`,
      (v) => v < 1 - t.turn_fallback_ratio,
      `${connected.length - relayed.length} of ${connected.length} connected reports direct${relayed.length ? `; relay: ${relayed.map((c) => `${c.agent_id}→${c.peer_id}`).join(', ')}` : ''}`,
    ),
    row(
      'turn_fallback_rate',
      'TURN fallback rate',
      established ? turn / established : null,
      'ratio',
      `<= ${t.turn_fallback_ratio}`,
      (v) => v > t.turn_fallback_ratio,
      `${turn} of ${established} established through a relay`,
    ),
    row(
      'connection_failure_rate',
      'Connection failures',
      attempted ? failed / attempted : null,
      'ratio',
      `<= ${t.connection_failure_ratio}`,
      (v) => v > t.connection_failure_ratio,
      `${failed} failed of ${attempted}`,
    ),
    row(
      'failed_connections',
      'Connections failed now',
      failedNow.length,
      'count',
      '0',
      (v) => v > 0,
      failedNow.map((c) => `${c.agent_id}→${c.peer_id}`).join(', ') || undefined,
    ),
    row(
      'connection_establishment_p95',
      'Connection establishment time (p95)',
      null,
      's',
      '<= 5',
      null,
      'not measured: agents report states, not set-up durations',
    ),
    row(
      'rtt_p2p_p95',
      'RTT P2P (p95)',
      histogramQuantile(0.95, s, 'webrtc_rtt_milliseconds', { connection_type: 'p2p' }),
      'ms',
      `<= ${t.rtt_p2p_p95_ms}`,
      (v) => v > t.rtt_p2p_p95_ms,
    ),
    row(
      'rtt_turn_p50',
      'RTT TURN (p50)',
      histogramQuantile(0.5, s, 'webrtc_rtt_milliseconds', { connection_type: 'relay' }),
      'ms',
      `<= ${t.rtt_turn_p50_ms}`,
      (v) => v > t.rtt_turn_p50_ms,
    ),
    row('jitter', 'Jitter', null, 'ms', '<= 100', null, 'not measured: DataChannels carry no RTP jitter'),
    row(
      'message_loss_rate',
      'Message loss rate',
      sent >= 1000 ? Math.max(0, 1 - received / sent) : null,
      'ratio',
      `<= ${t.message_loss_ratio}`,
      (v) => v > t.message_loss_ratio,
      sent >= 1000 ? `${received} received of ${sent} sent` : `only ${sent} messages sent: too few to judge`,
    ),
    row(
      'signature_failures',
      'Message signature verification failures',
      sum(s, 'webrtc_signature_verification_failures_total'),
      'count',
      '0',
      (v) => v > 0,
    ),
    row(
      'dtls_failures',
      'DTLS validation failures',
      sum(s, 'webrtc_dtls_validation_failures_total'),
      'count',
      '0',
      (v) => v > 0,
    ),
    row(
      'unauthorized_attempts',
      'Unauthorized connection attempts',
      sum(s, 'webrtc_unauthorized_attempts_total'),
      'count',
      '0',
      (v) => v > 0,
    ),
    row(
      'certificate_days',
      'Certificate expiration',
      cert.days,
      'days',
      `>= ${t.certificate_days}`,
      (v) => v < t.certificate_days,
      cert.detail,
    ),
    row(
      'memory_max',
      'Memory usage (largest agent)',
      maxMemory ? maxMemory.value / 1024 / 1024 : null,
      'MiB',
      `<= ${t.memory_mb}`,
      (v) => v > t.memory_mb,
      maxMemory ? maxMemory.labels.agent_id : 'no agent reported memory yet',
    ),
    row(
      'cpu_max',
      'CPU usage (busiest agent)',
      maxCpu ? maxCpu[1] : null,
      'cores',
      `<= ${t.cpu_ratio}`,
      (v) => v > t.cpu_ratio,
      maxCpu ? maxCpu[0] : 'no agent reported CPU twice within the sample window',
    ),
    row(
      'witness_signature_failures',
      'Signature failures in IF.witness (1h)',
      w ? (w.signature_verification_failed ?? 0) : null,
      'events',
      '0',
      (v) => v > 0,
      w ? undefined : (cur.witness?.error ?? 'no witness configured'),
    ),
    row(
      'witness_healing_failed',
      'Mesh healing given up in IF.witness (1h)',
      w ? (w.mesh_healing_failed_final ?? 0) : null,
      'events',
      '0',
      (v) => v > 0,
      w ? undefined : (cur.witness?.error ?? 'no witness configured'),
    ),
  ];
  for (const i of cur.instances) {
    rows.push(
      row('signaling_up', `Signaling instance ${i.url}`, i.up ? 1 : 0, 'up', '1', (v) => v < 1, i.error),
    );
  }
  const alerts = rows.filter((r) => r.status === 'alert').map((r) => r.id);
  return {
    ok: alerts.length === 0,
    checked_at: new Date(cur.taken_at).toISOString(),
    instances: cur.instances,
    witness: cur.witness ? { url: cur.witness.url, reachable: cur.witness.counts !== null } : null,
    rows,
    alerts,
  };
}
