import { describe, expect, it } from 'vitest';
import { histogramQuantile, parseExposition, sum } from '../../src/ops/monitoring/exposition.js';

// Buckets as prom-client writes them. The same shape is in test/monitoring/webrtc-alerts.test.yml,
// where promtool's own histogram_quantile puts p95 above 100 (fires) or below it (quiet).
const TEXT = `# HELP webrtc_rtt_milliseconds Round-trip time
# TYPE webrtc_rtt_milliseconds histogram
webrtc_rtt_milliseconds_bucket{le="50",connection_type="p2p"} 0
webrtc_rtt_milliseconds_bucket{le="100",connection_type="p2p"} 0
webrtc_rtt_milliseconds_bucket{le="150",connection_type="p2p"} 10
webrtc_rtt_milliseconds_bucket{le="+Inf",connection_type="p2p"} 10
webrtc_rtt_milliseconds_bucket{le="50",connection_type="relay"} 4
webrtc_rtt_milliseconds_bucket{le="100",connection_type="relay"} 4
webrtc_rtt_milliseconds_bucket{le="150",connection_type="relay"} 4
webrtc_rtt_milliseconds_bucket{le="+Inf",connection_type="relay"} 4
webrtc_memory_bytes{agent_id="a \\"quoted\\" id"} 1048576
webrtc_memory_bytes{agent_id="b"} 2097152
webrtc_signature_verification_failures_total 3
`;

describe('Prometheus text exposition', () => {
  const samples = parseExposition(TEXT);

  it('parses names, labels (with escapes) and values, skipping comments', () => {
    expect(samples).toHaveLength(11);
    expect(samples[8]).toEqual({
      name: 'webrtc_memory_bytes',
      labels: { agent_id: 'a "quoted" id' },
      value: 1048576,
    });
    expect(sum(samples, 'webrtc_memory_bytes')).toBe(3145728);
    expect(sum(samples, 'webrtc_signature_verification_failures_total')).toBe(3);
  });

  it('interpolates quantiles inside the bucket, as histogram_quantile does', () => {
    // rank 9.5 of 10 in (100, 150]: 100 + 50 × 9.5/10
    expect(histogramQuantile(0.95, samples, 'webrtc_rtt_milliseconds', { connection_type: 'p2p' })).toBe(
      147.5,
    );
    expect(histogramQuantile(0.5, samples, 'webrtc_rtt_milliseconds', { connection_type: 'relay' })).toBe(25);
    expect(
      histogramQuantile(0.5, samples, 'webrtc_rtt_milliseconds', { connection_type: 'none' }),
    ).toBeNull();
  });
});
