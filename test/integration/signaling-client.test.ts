// The typed signaling client against a real signaling server on a loopback port (every route, each
// answer checked by the schema the server builds it with), and against a plain HTTP server that
// answers what a signaling server never would: each failure is a typed error naming the URL.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignalingClient, SignalingHttpError, SignalingMalformedError } from '../../src/clients/signaling.js';
import { UnauthorizedError, UnreachableError } from '../../src/errors.js';
import { freePort } from '../helpers/processes.js';
import {
  ADMIN,
  connect,
  type RunningSignaling,
  SETTINGS,
  startSignaling,
  type TestClient,
} from '../helpers/signaling.js';

let sig: RunningSignaling;
let a: TestClient;
let b: TestClient;
let odd: http.Server;
let oddUrl: string;

// What a wrong service (or a broken proxy) might answer, by path.
const ODD: Record<string, [number, string]> = {
  '/health': [200, '{"status":"fine","instance_id":"x","agents":0}'],
  '/agents': [200, '{"agents":[{"agent_id":42}]}'],
  '/connections': [200, '<html>not json</html>'],
  '/stats': [500, '{"error":{"code":"internal","message":"boom"}}'],
  '/config': [502, 'Bad Gateway'],
  '/admin/blocks': [403, '{"error":{"code":"forbidden","message":"no"}}'],
};

beforeAll(async () => {
  sig = await startSignaling({ instanceId: 'sig-client' });
  a = await connect(sig.url);
  await a.register('c-a');
  b = await connect(sig.url);
  await b.register('c-b');
  a.send({
    type: 'connection-state',
    peer_id: 'c-b',
    state: 'connected',
    candidate_type: 'relay',
    rtt_ms: 3,
  });
  odd = http.createServer((req, res) => {
    if (req.url?.startsWith('/hang/')) return; // never answers
    const [status, body] = ODD[req.url ?? ''] ?? [404, ''];
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r));
  oddUrl = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
});
afterAll(async () => {
  a?.close();
  b?.close();
  await sig?.stop();
  odd?.closeAllConnections();
  await new Promise((r) => odd?.close(r));
});

describe('SignalingClient against a real signaling server', () => {
  it('reads every route, given the ws:// URL agents dial', async () => {
    const c = new SignalingClient(sig.url, { adminToken: ADMIN });
    expect(c.url).toBe(sig.http);
    expect(await c.health()).toMatchObject({
      status: 'ok',
      instance_id: 'sig-client',
      cluster: 'standalone',
    });
    expect((await c.health()).cluster_id).toBeUndefined();
    expect((await c.agents()).agents.map((x) => x.agent_id).sort()).toEqual(['c-a', 'c-b']);
    await expect.poll(async () => (await c.connections()).connections.length).toBe(1);
    expect((await c.connections()).connections[0]).toMatchObject({
      agent_id: 'c-a',
      peer_id: 'c-b',
      state: 'connected',
      candidate_type: 'relay',
    });
    expect(await c.stats()).toMatchObject({ total_agents: 2, local_agents: 2, relay_ratio: 1 });
    expect(await c.peer('c-a')).toMatchObject({ agent_id: 'c-a', mesh: 'default' });
    expect(await c.peer('nobody')).toBeNull();
    expect(await c.config()).toMatchObject(SETTINGS);
    expect(await c.metrics()).toContain('webrtc_signaling_instance_info');
  });

  it('drives every admin route, and a draining instance is an answer (down), not an error', async () => {
    const c = new SignalingClient(sig.http, { adminToken: ADMIN });
    expect(await c.setBandwidth({ enableBandwidthAdaptation: true, maxBitrateMbps: 2 })).toEqual({
      status: 'ok',
      pushed: 2,
      bandwidth: { enableBandwidthAdaptation: true, maxBitrateMbps: 2 },
    });
    expect((await c.config()).bandwidth).toEqual({ enableBandwidthAdaptation: true, maxBitrateMbps: 2 });
    const turn = ['turn:127.0.0.1:3479?transport=udp'];
    expect(await c.reloadConfig(turn)).toEqual({ status: 'ok', pushed: 2, turn_servers: turn });
    expect(await c.reconnectTurnPeers()).toMatchObject({ status: 'ok', agents: ['c-a'] });
    expect(await c.reconnectPeers({ 'c-a': ['c-b'] })).toMatchObject({ status: 'ok', agents: ['c-a'] });
    expect(await c.keyRotationStatus()).toMatchObject({ status: 'idle', total: 0 });
    const started = await c.rotateKeys({ rotation_reason: 'test', force_immediate: false });
    expect(started).toMatchObject({ status: 'started', total: 2 });
    expect(await c.keyRotationStatus()).toMatchObject({ rotation_id: started.rotation_id, total: 2 });
    const blocked = await c.block('c-z', 'test');
    expect(blocked).toMatchObject({ status: 'blocked', entry: { agent_id: 'c-z', reason: 'test' } });
    expect((await c.blocks()).blocked.map((e) => e.agent_id)).toEqual(['c-z']);
    expect(await c.unblock('c-z')).toMatchObject({ status: 'unblocked' });
    const again = await c.unblock('c-z').catch((e: unknown) => e);
    expect(again).toBeInstanceOf(SignalingHttpError);
    expect(again).toMatchObject({ status: 404, apiCode: 'not_blocked' });
    sig.server.core!.draining = true;
    try {
      expect(await c.health()).toMatchObject({ status: 'down', reason: 'draining', cluster: 'standalone' });
    } finally {
      sig.server.core!.draining = false;
    }
  });

  it('a refused token is UnauthorizedError (exit 4); no token is refused before anything is sent', async () => {
    const wrong = await new SignalingClient(sig.http, { adminToken: 'wrong' })
      .blocks()
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(UnauthorizedError);
    expect((wrong as Error).message).toContain(`${sig.http}/admin/blocks`);
    const before = await sig.server.core!.metrics.unauthorized.get();
    const none = await new SignalingClient(sig.http).rotateKeys({}).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(UnauthorizedError);
    expect((none as UnauthorizedError).exitCode).toBe(4);
    expect((await sig.server.core!.metrics.unauthorized.get()).values).toEqual(before.values);
  });
});

describe('SignalingClient against something that is not a signaling server', () => {
  it('a malformed answer is SignalingMalformedError naming the URL and the field', async () => {
    const c = new SignalingClient(oddUrl, { adminToken: ADMIN });
    const health = await c.health().catch((e: unknown) => e);
    expect(health).toBeInstanceOf(SignalingMalformedError);
    expect((health as Error).message).toContain(`${oddUrl}/health answered HTTP 200 with a malformed body`);
    const agents = await c.agents().catch((e: unknown) => e);
    expect(agents).toBeInstanceOf(SignalingMalformedError);
    expect((agents as Error).message).toMatch(/agents\.0\.agent_id: /);
    expect((agents as SignalingMalformedError).exitCode).toBe(1);
    const html = await c.connections().catch((e: unknown) => e);
    expect(html).toBeInstanceOf(SignalingMalformedError);
    expect((html as Error).message).toContain('without a JSON body');
  });

  it('an error status is SignalingHttpError with the server code; 403 is UnauthorizedError', async () => {
    const c = new SignalingClient(oddUrl, { adminToken: ADMIN });
    await expect(c.stats()).rejects.toMatchObject({
      constructor: SignalingHttpError,
      status: 500,
      apiCode: 'internal',
      message: `${oddUrl}/stats answered HTTP 500 (internal: boom)`,
    });
    await expect(c.config()).rejects.toMatchObject({ status: 502, apiCode: null });
    await expect(c.blocks()).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('a closed port or a server that never answers is UnreachableError (exit 3)', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const e = await new SignalingClient(closed).health().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UnreachableError);
    expect((e as Error).message).toContain(closed);
    const t = await new SignalingClient(`${oddUrl}/hang`, { timeoutMs: 200 })
      .health()
      .catch((x: unknown) => x);
    expect(t).toBeInstanceOf(UnreachableError);
    expect((t as Error).message).toContain('no answer within 200 ms');
  });
});
