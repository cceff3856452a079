import { execFile } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import {
  ADMIN,
  connect,
  getJson,
  postJson,
  type RunningSignaling,
  startSignaling,
  type TestClient,
} from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

let sig: RunningSignaling | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await sig?.stop();
  sig = undefined;
});

async function mesh(ids: string[]): Promise<TestClient[]> {
  sig = await startSignaling();
  const out: TestClient[] = [];
  for (const id of ids) {
    const c = await connect(sig.url);
    clients.push(c);
    await c.register(id);
    out.push(c);
  }
  return out;
}

function sh(script: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, out: `${stdout}${stderr}`.trim() }),
    );
  });
}

/** Waits until the server's /stats, /metrics, … (a JSON or text GET) satisfies `ok`. */
async function until(url: string, ok: (r: { json: any; text: string }) => boolean, what: string) {
  await waitFor(async () => ok(await getJson(url)), what);
}

describe("signaling HTTP API (the runbook's curl | jq lines)", () => {
  it('serves /health, /agents, /config and /peers/:id as the scripts read them', async () => {
    await mesh(['agent-1', 'agent-2']);
    const s = sig!;
    expect((await sh(`curl -sf ${s.http}/health | grep -q '"status":"ok"' && echo healthy`)).out).toBe(
      'healthy',
    );
    expect((await sh(`curl -sf ${s.http}/agents | jq '.agents | length'`)).out).toBe('2');
    expect(
      (
        await sh(
          `curl -sf ${s.http}/agents | jq -e '.agents[] | select(.agent_id=="agent-1")' > /dev/null && echo yes`,
        )
      ).out,
    ).toBe('yes');
    expect((await sh(`curl -s ${s.http}/config | jq '.turnFallbackTimeout'`)).out).toBe('5000');
    expect((await sh(`curl -s ${s.http}/peers/agent-2 | jq -r '.host'`)).out).toBe('127.0.0.1');
    const missing = await getJson(`${s.http}/peers/agent-9`);
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('unknown_peer');
  });

  it("builds /connections and /stats from the agents' connection-state reports", async () => {
    const [a, b, c] = await mesh(['agent-1', 'agent-2', 'agent-3']);
    a!.send({
      type: 'connection-state',
      peer_id: 'agent-2',
      state: 'connected',
      candidate_type: 'host',
      rtt_ms: 1.5,
    });
    b!.send({
      type: 'connection-state',
      peer_id: 'agent-1',
      state: 'connected',
      candidate_type: 'host',
      rtt_ms: 1.7,
    });
    c!.send({
      type: 'connection-state',
      peer_id: 'agent-1',
      state: 'failed',
      candidate_type: null,
      rtt_ms: null,
    });
    const s = sig!;
    await until(`${s.http}/connections`, (r) => r.json.connections.length === 3, 'three reports');
    expect(
      (
        await sh(
          `curl -sf ${s.http}/connections | jq '.connections | map(select(.state=="connected")) | length'`,
        )
      ).out,
    ).toBe('2');
    expect(
      (await sh(`curl -s ${s.http}/stats | jq '.connections | map(select(.state=="failed")) | length'`)).out,
    ).toBe('1');
    const stats = (await getJson(`${s.http}/stats`)).json;
    expect(stats.total_agents).toBe(3);
    expect(stats.connections[0]).toMatchObject({
      agent_id: 'agent-1',
      peer_id: 'agent-2',
      state: 'connected',
      candidate_type: 'host',
      rtt_ms: 1.5,
    });
    const metrics = (await getJson(`${s.http}/metrics`)).text;
    expect(metrics).toMatch(/^webrtc_connections_established_total 2$/m);
    expect(metrics).toMatch(/^webrtc_connections_failed_total 1$/m);
    expect(metrics).toMatch(/^webrtc_total_connections 2$/m);
    expect(metrics).toMatch(/^webrtc_rtt_milliseconds_count\{connection_type="p2p"\} 2$/m);
    c!.close();
    // agent-3 leaves, and its report goes with it
    await until(`${s.http}/stats`, (r) => r.json.total_agents === 2, 'agent-3 to leave');
    expect((await getJson(`${s.http}/stats`)).json.connections).toHaveLength(2);
  });

  it('lists no connection to a peer that has left, though its peer reported it connected as it went', async () => {
    const [a, b] = await mesh(['agent-1', 'agent-2']);
    const report = (state: string) =>
      a!.send({ type: 'connection-state', peer_id: 'agent-2', state, candidate_type: 'host', rtt_ms: 1 });
    report('connected');
    const s = sig!;
    await until(`${s.http}/connections`, (r) => r.json.connections.length === 1, 'the report');
    // agent-2 dies (kill -9: no bye); agent-1's link has not timed out yet, so it reports the pair
    // connected once more, and signaling, which checked agent-2 a moment ago, stores it.
    b!.ws.terminate();
    await until(`${s.http}/stats`, (r) => r.json.total_agents === 1, 'agent-2 to leave');
    report('connected');
    await waitFor(async () => {
      const m = (await getJson(`${s.http}/metrics`)).text;
      return /^webrtc_connections_established_total 2$/m.test(m);
    }, 'the second report to be taken');
    expect((await getJson(`${s.http}/connections`)).json.connections).toEqual([]);
    expect((await getJson(`${s.http}/stats`)).json).toMatchObject({ connections: [], by_state: {} });
  });

  it('feeds webrtc_* metrics from agent reports, and exposes every name the runbook uses', async () => {
    const [a] = await mesh(['agent-1']);
    a!.send({
      type: 'metrics-report',
      messages_sent: 10,
      messages_received: 8,
      signature_failures: 1,
      bytes_per_second: 12_345,
      memory_bytes: 50_000_000,
    });
    a!.send({ type: 'metrics-report', messages_sent: 15, messages_received: 8, signature_failures: 1 });
    await until(
      `${sig!.http}/metrics`,
      (r) => /^webrtc_messages_sent_total 15$/m.test(r.text),
      'both reports',
    );
    const text = (await getJson(`${sig!.http}/metrics`)).text;
    for (const name of [
      'webrtc_connections_established_total',
      'webrtc_connections_failed_total',
      'webrtc_connections_dropped_total',
      'webrtc_connections_attempted_total',
      'webrtc_total_connections',
      'webrtc_turn_fallback_total',
      'webrtc_rtt_milliseconds',
      'webrtc_messages_sent_total',
      'webrtc_messages_received_total',
      'webrtc_message_errors_total',
      'webrtc_signature_verification_failures_total',
      'webrtc_dtls_validation_failures_total',
      'webrtc_srtp_key_rotations_total',
      'webrtc_signaling_errors_total',
      'webrtc_unauthorized_attempts_total',
      'webrtc_bandwidth_bytes_per_second',
      'webrtc_memory_bytes',
    ]) {
      expect(text, name).toContain(`# TYPE ${name} `);
    }
    expect(text).toMatch(/^webrtc_messages_sent_total 15$/m);
    expect(text).toMatch(/^webrtc_signature_verification_failures_total 1$/m);
    expect(text).toMatch(/^webrtc_bandwidth_bytes_per_second\{agent_id="agent-1"\} 12345$/m);
    expect(
      (await sh(`curl -s ${sig!.http}/metrics | grep webrtc_bandwidth_bytes_per_second | tail -1`)).out,
    ).toContain('12345');
  });

  it("passes promtool check metrics, but for the one unit name the runbook's alerts require", async () => {
    requireBinary('promtool', 'prometheus');
    // agent-2 registered: a report about a peer outside the reporter's mesh is dropped (issue 21.4).
    const [a] = await mesh(['agent-1', 'agent-2']);
    a!.send({
      type: 'connection-state',
      peer_id: 'agent-2',
      state: 'connected',
      candidate_type: 'relay',
      rtt_ms: 40,
    });
    a!.send({ type: 'metrics-report', memory_bytes: 1, bytes_per_second: 2 });
    await until(
      `${sig!.http}/metrics`,
      (r) => /^webrtc_memory_bytes\{[^}]*\} 1$/m.test(r.text),
      'the report',
    );
    const r = await sh(`curl -s ${sig!.http}/metrics | promtool check metrics`);
    // promtool exits 1 on a parse error and 3 on lint findings; the only finding allowed is the
    // runbook's own name (CONTRACT §1: webrtc_rtt_milliseconds); webrtc_rtt_seconds is lint-clean.
    expect([0, 3]).toContain(r.code);
    const findings = r.out.split('\n').filter(Boolean);
    expect(findings).toEqual(['webrtc_rtt_milliseconds use base unit "seconds" instead of "milliseconds"']);
  });

  it('rotates keys: pushes rotate-keys, and reports completed/total as agents answer', async () => {
    const [a, b] = await mesh(['agent-1', 'agent-2']);
    const s = sig!;
    const started = await sh(
      `curl -s -X POST ${s.http}/admin/rotate-keys -H "Authorization: Bearer ${ADMIN}" -H "Content-Type: application/json" -d '{"rotation_reason":"security_incident","incident_id":"INC-7","force_immediate":true}'`,
    );
    const body = JSON.parse(started.out);
    expect(body).toMatchObject({ status: 'started', total: 2 });
    const push = await a!.next('rotate-keys');
    expect(push).toMatchObject({ rotation_id: body.rotation_id, force_immediate: true });
    await b!.next('rotate-keys');
    expect((await sh(`curl -s ${s.http}/admin/key-rotation-status | jq '.completed'`)).out).toBe('0');
    a!.send({ type: 'keys-rotated', rotation_id: body.rotation_id });
    await until(`${s.http}/admin/key-rotation-status`, (r) => r.json.completed === 1, "agent-1's answer");
    expect((await getJson(`${s.http}/admin/key-rotation-status`)).json).toMatchObject({
      completed: 1,
      total: 2,
      status: 'in_progress',
      pending: ['agent-2'],
    });
    b!.send({ type: 'keys-rotated', rotation_id: body.rotation_id });
    await until(`${s.http}/admin/key-rotation-status`, (r) => r.json.completed === 2, "agent-2's answer");
    expect(
      (await sh(`curl -s ${s.http}/admin/key-rotation-status | jq -c '[.completed, .total, .status]'`)).out,
    ).toBe('[2,2,"completed"]');
    expect((await getJson(`${s.http}/metrics`)).text).toMatch(/^webrtc_srtp_key_rotations_total 2$/m);
    expect(s.events.filter((e) => e.event === 'srtp_key_rotated').map((e) => e.agent_id)).toEqual([
      'agent-1',
      'agent-2',
    ]);
  });

  it('refuses admin calls without the bearer token (401, counted) and pushes config with it', async () => {
    const [a] = await mesh(['agent-1']);
    const s = sig!;
    expect((await postJson(`${s.http}/admin/rotate-keys`, {})).status).toBe(401);
    expect(
      (await postJson(`${s.http}/admin/reload-config`, { turn_servers: ['turn:x:3478'] }, 'wrong')).status,
    ).toBe(401);
    expect((await getJson(`${s.http}/metrics`)).text).toMatch(/^webrtc_unauthorized_attempts_total 2$/m);
    const bad = await postJson(`${s.http}/admin/reload-config`, { turn_servers: ['http://x'] }, ADMIN);
    expect(bad.status).toBe(400);
    const ok = await postJson(
      `${s.http}/admin/reload-config`,
      { turn_servers: ['turn:127.0.0.1:3479?transport=udp'] },
      ADMIN,
    );
    expect(ok.json).toMatchObject({ status: 'ok', pushed: 1 });
    expect(await a!.next('config')).toMatchObject({ turn_servers: ['turn:127.0.0.1:3479?transport=udp'] });
    expect((await getJson(`${s.http}/config`)).json.turnServers).toEqual([
      'turn:127.0.0.1:3479?transport=udp',
    ]);
  });

  it('asks agents on TURN to reconnect (bodyless POST, as the failover guide sends it)', async () => {
    const [a, b] = await mesh(['agent-1', 'agent-2']);
    a!.send({
      type: 'connection-state',
      peer_id: 'agent-2',
      state: 'connected',
      candidate_type: 'relay',
      rtt_ms: 30,
    });
    b!.send({
      type: 'connection-state',
      peer_id: 'agent-1',
      state: 'connected',
      candidate_type: 'host',
      rtt_ms: 30,
    });
    await until(`${sig!.http}/connections`, (r) => r.json.connections.length === 2, 'both reports');
    const r = await sh(
      `curl -s -X POST -H "Authorization: Bearer ${ADMIN}" ${sig!.http}/admin/reconnect-turn-peers`,
    );
    expect(JSON.parse(r.out)).toMatchObject({ status: 'ok', agents: ['agent-1'], pushed: 1 });
    expect(await a!.next('reconnect')).toMatchObject({ peers: ['agent-2'] });
  });

  it('pushes bandwidth adaptation posted with curl -d', async () => {
    const [a] = await mesh(['agent-1']);
    const r = await sh(
      `curl -s -X POST ${sig!.http}/config/bandwidth -H "Content-Type: application/json" -d '{"enableBandwidthAdaptation": true, "maxBitrateMbps": 1}'`,
    );
    expect(JSON.parse(r.out)).toMatchObject({ status: 'ok', pushed: 1 });
    expect(await a!.next('config')).toMatchObject({
      bandwidth: { enableBandwidthAdaptation: true, maxBitrateMbps: 1 },
    });
    expect((await postJson(`${sig!.http}/config/bandwidth`, { maxBitrateMbps: 'lots' })).status).toBe(400);
  });

  it('drains: /health answers 503, agents are closed with 1012, a last event is logged', async () => {
    const [a] = await mesh(['agent-1']);
    const s = sig!;
    s.server.core.deps.drainMs = 400;
    // The drain period runs on fake timers, so /health is asked during it however slow this machine.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const closing = s.server.close();
      expect((await a!.closed).code).toBe(1012);
      const h = await getJson(`${s.http}/health`);
      expect(h.status).toBe(503);
      expect(h.json.status).toBe('down');
      await vi.advanceTimersByTimeAsync(400 + 1_000);
      await closing;
    } finally {
      vi.useRealTimers();
    }
    expect(s.events.map((e) => e.event)).toContain('signaling_server_stopped');
  });
});
