// The runbook's five Grafana panels ("Grafana Dashboard Configuration") as an importable dashboard.
// Histogram quantiles read the _bucket series through rate(), and the TURN panel counts
// webrtc_turn_fallback_total (connections established through a relay), the series that exists.

export interface PanelDef {
  title: string;
  type: 'timeseries' | 'gauge' | 'table';
  targets: { expr: string; legendFormat: string }[];
}

const quantile = (q: number, type: string) =>
  `histogram_quantile(${q}, sum by (le) (rate(webrtc_rtt_milliseconds_bucket{connection_type="${type}"}[5m])))`;

export const PANELS: PanelDef[] = [
  {
    title: 'WebRTC Connection Status',
    type: 'timeseries',
    targets: [
      { expr: 'increase(webrtc_connections_established_total[5m])', legendFormat: 'Established' },
      { expr: 'increase(webrtc_connections_failed_total[5m])', legendFormat: 'Failed' },
      { expr: 'increase(webrtc_connections_dropped_total[5m])', legendFormat: 'Dropped' },
    ],
  },
  {
    title: 'RTT Distribution (P2P vs TURN)',
    type: 'timeseries',
    targets: [
      { expr: quantile(0.5, 'p2p'), legendFormat: 'P2P - P50' },
      { expr: quantile(0.95, 'p2p'), legendFormat: 'P2P - P95' },
      { expr: quantile(0.5, 'relay'), legendFormat: 'TURN - P50' },
      { expr: quantile(0.95, 'relay'), legendFormat: 'TURN - P95' },
    ],
  },
  {
    title: 'IFMessage Throughput',
    type: 'timeseries',
    targets: [
      { expr: 'rate(webrtc_messages_sent_total[1m])', legendFormat: 'Sent/sec' },
      { expr: 'rate(webrtc_messages_received_total[1m])', legendFormat: 'Received/sec' },
      { expr: 'rate(webrtc_message_errors_total[1m])', legendFormat: 'Errors/sec' },
    ],
  },
  {
    title: 'TURN Fallback Rate',
    type: 'gauge',
    targets: [
      { expr: 'rate(webrtc_turn_fallback_total[5m])', legendFormat: 'TURN Fallbacks/sec' },
      { expr: 'increase(webrtc_turn_fallback_total[1h])', legendFormat: 'Total in Last Hour' },
    ],
  },
  {
    title: 'Security Events',
    type: 'table',
    targets: [
      { expr: 'increase(webrtc_dtls_validation_failures_total[5m])', legendFormat: 'DTLS Failures' },
      {
        expr: 'increase(webrtc_signature_verification_failures_total[5m])',
        legendFormat: 'Signature Failures',
      },
      { expr: 'increase(webrtc_srtp_key_rotations_total[1h])', legendFormat: 'Key Rotations/Hour' },
    ],
  },
];

/** Metric names an expression reads (webrtc_* only). */
export function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\bwebrtc_[a-z0-9_]+/g) ?? [])];
}

/** A Grafana dashboard (schema 39) with a Prometheus datasource input, importable as is. */
export function grafanaDashboard(): Record<string, unknown> {
  // Grafana replaces ${DS_PROMETHEUS} with the datasource picked at import.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana placeholder, not a template
  const ds = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };
  return {
    __inputs: [
      {
        name: 'DS_PROMETHEUS',
        label: 'Prometheus',
        type: 'datasource',
        pluginId: 'prometheus',
        pluginName: 'Prometheus',
      },
    ],
    uid: 'ifmesh-webrtc-overview',
    title: 'WebRTC Mesh Overview',
    tags: ['ifmesh', 'webrtc'],
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    panels: PANELS.map((p, i) => ({
      id: i + 1,
      title: p.title,
      type: p.type,
      datasource: ds,
      gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
      targets: p.targets.map((t, j) => ({
        datasource: ds,
        expr: t.expr,
        legendFormat: t.legendFormat,
        refId: String.fromCharCode(65 + j),
      })),
    })),
  };
}
