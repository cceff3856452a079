// Every IF.witness query written in the two seed documents, sent with curl exactly as the runbook
// sends it (bare `curl -d`, so form-encoded Content-Type) and read with the runbook's own jq filter.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, type RunningWitness, startWitness } from '../helpers/witness.js';

let w: RunningWitness;
// The witness reads time from this fixed clock, so "-1m" means the same instant however long the
// events take to post and the queries to run: the 20 s and 4.9 min margins below never shrink.
const NOW = Date.parse('2026-06-15T12:00:00.000Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const MIN = 60_000;
const H = 60 * MIN;
const D = 24 * H;

function sh(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', script], { timeout: 15_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    );
  });
}

function q(body: string, jq: string): Promise<string> {
  return sh(`curl -s -X POST ${w.url}/api/query -d '${body.replaceAll("'", "'\\''")}' | jq -c '${jq}'`);
}

beforeAll(async () => {
  w = await startWitness({ now: () => NOW });
  const events = [
    {
      tag: 'csc-a1-failed-10m',
      event: 'connection_state_changed',
      agent_id: 'agent-1',
      metadata: { state: 'failed' },
      timestamp: ago(10 * MIN),
    },
    {
      tag: 'csc-a1-connected-10m',
      event: 'connection_state_changed',
      agent_id: 'agent-1',
      metadata: { state: 'connected' },
      timestamp: ago(10 * MIN),
    },
    {
      tag: 'csc-a2-failed-2m',
      event: 'connection_state_changed',
      agent_id: 'agent-2',
      metadata: { state: 'failed' },
      timestamp: ago(2 * MIN),
    },
    {
      tag: 'csc-a1-failed-2h',
      event: 'connection_state_changed',
      agent_id: 'agent-1',
      metadata: { state: 'failed' },
      timestamp: ago(2 * H),
    },
    { tag: 'tfi-3h', event: 'turn_fallback_initiated', agent_id: 'agent-3', timestamp: ago(3 * H) },
    { tag: 'tfi-2d', event: 'turn_fallback_initiated', agent_id: 'agent-3', timestamp: ago(2 * D) },
    { tag: 'svf-30m', event: 'signature_verification_failed', agent_id: 'agent-2', timestamp: ago(30 * MIN) },
    { tag: 'srtp-6d', event: 'srtp_key_rotated', timestamp: ago(6 * D) },
    { tag: 'srtp-8d', event: 'srtp_key_rotated', timestamp: ago(8 * D) },
    {
      tag: 'trace-20m',
      event: 'p2p_connection_established',
      trace_id: 'abc123def456',
      timestamp: ago(20 * MIN),
    },
    { tag: 'trace-other', event: 'p2p_connection_established', trace_id: 'zzz', timestamp: ago(20 * MIN) },
    {
      tag: 'ice-a1-a2',
      event: 'ice_candidate_sent',
      agent_id: 'agent-1',
      peer_id: 'agent-2',
      timestamp: ago(MIN),
    },
    {
      tag: 'ice-a1-a3',
      event: 'ice_candidate_sent',
      agent_id: 'agent-1',
      peer_id: 'agent-3',
      timestamp: ago(MIN),
    },
    {
      tag: 'cqu-relay',
      event: 'connection_quality_update',
      agent_id: 'agent-1',
      metadata: { roundTripTime: 600, packetsLost: 3, candidateType: 'relay', agent_location: 'us-east' },
      timestamp: ago(2 * MIN),
    },
    {
      tag: 'cqu-host',
      event: 'connection_quality_update',
      agent_id: 'agent-1',
      metadata: { roundTripTime: 20, packetsLost: 7, candidateType: 'host', agent_location: 'eu-west' },
      timestamp: ago(30_000),
    },
    {
      tag: 'bw',
      event: 'bandwidth_update',
      agent_id: 'agent-1',
      metadata: { bytesPerSecond: 125000 },
      timestamp: ago(20_000),
    },
    {
      tag: 'tcd',
      event: 'turn_connection_detected',
      agent_id: 'agent-1',
      metadata: { turn_server: 'turn:127.0.0.1:3479' },
      timestamp: ago(20_000),
    },
    {
      tag: 'cert-bad',
      event: 'webrtc_cert_validated',
      agent_id: 'agent-1',
      peer_id: 'agent-2',
      metadata: { valid: false, self_signed: true },
      timestamp: ago(10 * MIN),
    },
    {
      tag: 'cert-ok',
      event: 'webrtc_cert_validated',
      agent_id: 'agent-1',
      peer_id: 'agent-2',
      metadata: { valid: true, self_signed: false },
      timestamp: ago(9 * MIN),
    },
    ...Array.from({ length: 12 }, (_, i) => ({
      tag: `mem-${i}`,
      event: 'memory_usage_update',
      agent_id: 'agent-1',
      metadata: { memory_bytes: (100 + i) * 1024 * 1024 },
      timestamp: ago((12 - i) * MIN),
    })),
    { tag: 'err-sig-9m', event: 'signaling_error', timestamp: ago(9 * MIN) },
    { tag: 'err-ice-40m', event: 'ice_gathering_error', timestamp: ago(40 * MIN) },
    { tag: 'dep-err', event: 'connection_error', deployment_id: 'D-1', timestamp: ago(20_000) },
    {
      tag: 'dep-ok',
      event: 'connection_state_changed',
      deployment_id: 'D-1',
      metadata: { state: 'connected' },
      timestamp: ago(20_000),
    },
    {
      tag: 'dep-fail',
      event: 'connection_state_changed',
      deployment_id: 'D-1',
      metadata: { state: 'failed' },
      timestamp: ago(20_000),
    },
    {
      tag: 'dep-old',
      event: 'connection_state_changed',
      deployment_id: 'D-1',
      metadata: { state: 'connected' },
      timestamp: ago(5 * MIN),
    },
    { tag: 'fo-1', event: 'turn_server_failover', failover_id: 'F-1', timestamp: ago(3 * MIN) },
    { tag: 'fo-2', event: 'turn_server_failover_complete', failover_id: 'F-1', timestamp: ago(2 * MIN) },
    { tag: 'fo-old', event: 'turn_server_failover', failover_id: 'F-1', timestamp: ago(30 * MIN) },
    { tag: 'sec-3d', event: 'security_alert', timestamp: ago(3 * D) },
    { tag: 'fail-5d', event: 'turn_server_failure_alert', timestamp: ago(5 * D) },
  ];
  const r = await post(`${w.url}/api/log`, events);
  expect(r.status).toBe(201);
});
afterAll(async () => {
  await w.stop();
});

describe("the seed documents' witness queries, via curl | jq", () => {
  it('runbook: connection failures for agent-1 in the last hour', async () => {
    const body = `{
  "query": {
    "event": "connection_state_changed",
    "agent_id": "agent-1",
    "metadata.state": "failed"
  },
  "time_range": {"from": "-1h", "to": "now"}
}`;
    expect(await q(body, '[.results[].tag]')).toBe('["csc-a1-failed-10m"]');
  });

  it('runbook: TURN fallbacks in 24 h, signature failures in 1 h, SRTP rotations in 7 d, a trace', async () => {
    expect(
      await q(
        '{"query": {"event": "turn_fallback_initiated"}, "time_range": {"from": "-24h", "to": "now"}}',
        '[.results[].tag]',
      ),
    ).toBe('["tfi-3h"]');
    expect(
      await q(
        '{"query": {"event": "signature_verification_failed"}, "time_range": {"from": "-1h", "to": "now"}}',
        '[.results[].tag]',
      ),
    ).toBe('["svf-30m"]');
    expect(
      await q(
        '{"query": {"event": "srtp_key_rotated"}, "time_range": {"from": "-7d", "to": "now"}}',
        '[.results[].tag]',
      ),
    ).toBe('["srtp-6d"]');
    expect(
      await q(
        '{"query": {"trace_id": "abc123def456"}, "time_range": {"from": "-1h", "to": "now"}}',
        '[.results[].tag]',
      ),
    ).toBe('["trace-20m"]');
  });

  it('troubleshoot-connection-timeout: ICE candidates for a pair in 5 min', async () => {
    const body = `{"query": {"event": "ice_candidate_sent", "agent_id": "agent-1", "peer_id": "agent-2"}, "time_range": {"from": "-5m", "to": "now"}}`;
    expect(await q(body, '.results | length')).toBe('1');
  });

  it('troubleshoot-packet-loss: last packetsLost, last bytesPerSecond, TURN in use', async () => {
    const a = `{"query": {"event": "connection_quality_update", "agent_id": "agent-1"}, "time_range": {"from": "-5m", "to": "now"}}`;
    expect(await q(a, '.results[-1].metadata.packetsLost // 0')).toBe('7');
    const b = `{"query": {"event": "bandwidth_update", "agent_id": "agent-1"}, "time_range": {"from": "-1m", "to": "now"}}`;
    expect(await q(b, '.results | last.metadata.bytesPerSecond // 0')).toBe('125000');
    const c = `{"query": {"event": "turn_connection_detected", "agent_id": "agent-1"}, "time_range": {"from": "-1m", "to": "now"}}`;
    expect(await q(c, '.results | length')).toBe('1');
  });

  it('DTLS: invalid certificates for a pair, and self-signed ones', async () => {
    const a = `{"query": {"event": "webrtc_cert_validated", "agent_id": "agent-1", "peer_id": "agent-2", "metadata.valid": false}, "time_range": {"from": "-1h", "to": "now"}}`;
    expect(await q(a, '.results | last.metadata')).toBe('{"self_signed":true,"valid":false}');
    const b = `{"query": {"event": "webrtc_cert_validated", "metadata.self_signed": true}, "time_range": {"from": "-1h", "to": "now"}}`;
    expect(await q(b, '.results | length')).toBe('1');
  });

  it('memory: the last ten samples in MB', async () => {
    const body = `{"query": {"event": "memory_usage_update"}, "time_range": {"from": "-1h", "to": "now"}}`;
    expect(await q(body, '.results | map(.metadata.memory_bytes / 1024 / 1024) | .[-10:]')).toBe(
      '[102,103,104,105,106,107,108,109,110,111]',
    );
  });

  it('incident p1: failed connections in 5 min; recent errors by regex in 30 min', async () => {
    const a = `{"query": {"event": "connection_state_changed", "metadata.state": "failed"}, "time_range": {"from": "-5m", "to": "now"}}`;
    expect(await q(a, '[.results[].tag]')).toBe('["csc-a2-failed-2m","dep-fail"]');
    const b = `{"query": {"event": {"regex": ".*error.*"}}, "time_range": {"from": "-30m", "to": "now"}}`;
    expect(await q(b, '[.results[-10:] | .[] | .tag]')).toBe('["err-sig-9m","dep-err"]');
    expect(await q(b, '.results[-1] | {timestamp, event, metadata} | keys')).toBe(
      '["event","metadata","timestamp"]',
    );
  });

  it('incident p2: high latency (> 500 ms), relayed connections, grouping by location', async () => {
    const a = `{"query": {"event": "connection_quality_update", "metadata.roundTripTime": {"$gt": 500}}, "time_range": {"from": "-5m", "to": "now"}}`;
    expect(await q(a, '.results | length')).toBe('1');
    const b = `{"query": {"event": "connection_quality_update", "metadata.candidateType": "relay"}, "time_range": {"from": "-5m", "to": "now"}}`;
    expect(await q(b, '.results | length')).toBe('1');
    const c = `{"query": {"event": "connection_quality_update"}, "time_range": {"from": "-5m", "to": "now"}}`;
    expect(
      await q(
        c,
        '.results | group_by(.metadata.agent_location) | map({location: .[0].metadata.agent_location, count: length})',
      ),
    ).toBe('[{"location":"eu-west","count":1},{"location":"us-east","count":1}]');
  });

  it('canary analysis: error rate, total, successful and attempted for a deployment in 1 min', async () => {
    const base = (query: string) => `{"query": ${query}, "time_range": {"from": "-1m", "to": "now"}}`;
    expect(
      await q(base('{"deployment_id": "D-1", "event": {"regex": ".*error.*"}}'), '.results | length'),
    ).toBe('1');
    expect(await q(base('{"deployment_id": "D-1"}'), '.results | length')).toBe('3');
    expect(
      await q(
        base('{"event": "connection_state_changed", "metadata.state": "connected", "deployment_id": "D-1"}'),
        '.results | length',
      ),
    ).toBe('1');
    expect(
      await q(base('{"event": "connection_state_changed", "deployment_id": "D-1"}'), '.results | length'),
    ).toBe('2');
  });

  it('maintenance: security, failure or error events in 7 days', async () => {
    const body = `{"query": {"event": {"regex": "security|failure|error"}}, "time_range": {"from": "-7d", "to": "now"}}`;
    expect(await q(body, '[.results[].tag]')).toBe(
      '["fail-5d","sec-3d","err-ice-40m","err-sig-9m","dep-err"]',
    );
  });

  it('failover guide: TURN replacement in use, failover events, error windows, last failure', async () => {
    const a = `{"query": {"event": "turn_connection_detected", "metadata.turn_server": "turn:127.0.0.1:3479"}, "time_range": {"from": "-5m", "to": "now"}}`;
    expect(await q(a, '.results | length')).toBe('1');
    const b = `{"query": {"failover_id": "F-1"}, "time_range": {"from": "-10m", "to": "now"}}`;
    expect(await q(b, '.results | length')).toBe('2');
    // for i in 1..3: from "-$((i*5))m" to "-$(((i-1)*5))m"
    const windows = [];
    for (let i = 1; i <= 3; i++) {
      windows.push(
        await q(
          `{"query": {"event": {"regex": ".*error.*"}}, "time_range": {"from": "-${i * 5}m", "to": "-${(i - 1) * 5}m"}}`,
          '.results | length',
        ),
      );
    }
    expect(windows).toEqual(['1', '1', '0']);
    const c = `{"query": {"event": "connection_state_changed", "metadata.state": "failed"}, "time_range": {"from": "-1m", "to": "now"}}`;
    expect(await q(c, '.results | last | .tag')).toBe('"dep-fail"');
  });

  it("accepts the runbook's writes posted with bare curl -d and a bearer header", async () => {
    const out = await sh(
      `curl -s -X POST ${w.url}/api/log -H "Authorization: Bearer test-witness-key" -H "Content-Type: application/json" -d "{
    \\"event\\": \\"incident_declared\\",
    \\"incident_id\\": \\"INC-42\\",
    \\"severity\\": \\"p1\\",
    \\"timestamp\\": \\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\",
    \\"action\\": \\"deployments_halted\\"
  }"`,
    );
    expect(JSON.parse(out).id).toBeGreaterThan(0);
    const cleanup = await sh(
      `curl -s -X POST ${w.url}/api/admin/cleanup -H "Authorization: Bearer test-witness-key" -H "Content-Type: application/json" -d '{"retain_days": 30}'`,
    );
    expect(JSON.parse(cleanup)).toMatchObject({ deleted: 0, retain_days: 30 });
  });
});
