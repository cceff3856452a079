// Signaling instances sharing one mesh through a real redis-server (started here on a loopback
// port): registry, announcements, relay, admin pushes and rotation state reach every instance.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toBase64url } from '../../src/crypto/ed25519.js';
import { type ClusterInstance, startClusterInstance, until } from '../helpers/cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { ADMIN, connect, getJson, postJson, type TestClient } from '../helpers/signaling.js';

let redis: TestRedis;
let prefix: string;
const instances: ClusterInstance[] = [];
const clients: TestClient[] = [];

beforeEach(async () => {
  redis = await startRedis();
  prefix = `t-${randomUUID()}:`;
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(instances.splice(0).map((i) => i.stop()));
  await redis.cleanup();
});

async function instance(id?: string): Promise<ClusterInstance> {
  const i = await startClusterInstance(redis.url, prefix, id);
  instances.push(i);
  return i;
}
async function client(i: ClusterInstance): Promise<TestClient> {
  const c = await connect(i.url);
  clients.push(c);
  return c;
}
const ids = async (i: ClusterInstance) =>
  ((await getJson(`${i.http}/agents`)).json.agents as { agent_id: string }[]).map((a) => a.agent_id).sort();

describe('signaling cluster over Redis', () => {
  it('shares registrations, announcements and relay across instances', async () => {
    const [s1, s2, s3] = [await instance(), await instance(), await instance()];
    const a = await client(s1);
    await a.register('agent-a');
    const b = await client(s2);
    const rb = await b.register('agent-b');
    expect(rb.peers).toEqual([{ agent_id: 'agent-a', public_key: toBase64url(a.keys.publicKey) }]);
    expect(await a.next('agent-joined')).toMatchObject({ agent_id: 'agent-b' });
    const c = await client(s3);
    expect((await c.register('agent-c')).peers.map((p: { agent_id: string }) => p.agent_id).sort()).toEqual([
      'agent-a',
      'agent-b',
    ]);
    await a.next('agent-joined');
    await b.next('agent-joined');
    for (const s of [s1, s2, s3]) expect(await ids(s)).toEqual(['agent-a', 'agent-b', 'agent-c']);

    b.send({ type: 'offer', to: 'agent-c', sdp: 'v=0 offer' });
    const offer = await c.next('offer');
    expect(offer).toMatchObject({
      type: 'offer',
      from: 'agent-b',
      sdp: 'v=0 offer',
      public_key: toBase64url(b.keys.publicKey),
    });
    expect(offer.to).toBeUndefined();
    c.send({ type: 'answer', to: 'agent-b', sdp: 'v=0 answer' });
    expect(await b.next('answer')).toMatchObject({ from: 'agent-c', sdp: 'v=0 answer' });
    const cand = { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    a.send({ type: 'ice-candidate', to: 'agent-c', candidate: cand });
    expect(await c.next('ice-candidate')).toMatchObject({ from: 'agent-a', candidate: cand });
    a.send({ type: 'bye', to: 'agent-b' });
    expect(await b.next('bye')).toMatchObject({ from: 'agent-a' });
    a.send({ type: 'offer', to: 'nobody', sdp: 'x' });
    expect(await a.next('error')).toMatchObject({ code: 'unknown_peer' });

    c.send({
      type: 'connection-state',
      peer_id: 'agent-b',
      state: 'connected',
      candidate_type: 'host',
      rtt_ms: 1,
    });
    await until('a report made on s3 seen from s1', async () => {
      const conns = (await getJson(`${s1.http}/connections`)).json.connections;
      return conns.some((r: { agent_id: string }) => r.agent_id === 'agent-c');
    });
    expect((await getJson(`${s2.http}/stats`)).json).toMatchObject({
      total_agents: 3,
      local_agents: 1,
      cluster: 'redis',
    });
    expect((await getJson(`${s3.http}/peers/agent-a`)).json).toMatchObject({
      agent_id: 'agent-a',
      host: '127.0.0.1',
    });
    const metrics = (await getJson(`${s2.http}/metrics`)).text;
    expect(metrics).toContain(
      `webrtc_signaling_instance_info{instance_id="${s2.server.core.deps.instanceId}",cluster="redis"} 1`,
    );
    expect(metrics).toMatch(/^webrtc_signaling_agents 1$/m);
    expect(metrics).toMatch(/^webrtc_signaling_cluster_agents 3$/m);

    c.close();
    expect(await a.next('agent-left')).toMatchObject({ agent_id: 'agent-c' });
    expect(await b.next('agent-left')).toMatchObject({ agent_id: 'agent-c' });
    await until(
      'agent-c gone everywhere',
      async () => (await ids(s1)).length === 2 && (await ids(s2)).length === 2,
    );
    expect((await getJson(`${s1.http}/connections`)).json.connections).toEqual([]);
  });

  it('relays to an agent that moved to another instance, however fresh the move', async () => {
    const [s1, s2, s3] = [await instance(), await instance(), await instance()];
    const a = await client(s1);
    await a.register('agent-a');
    const b = await client(s2);
    await b.register('agent-b');
    for (let round = 0; round < 5; round++) {
      // s2 learns (and caches) where agent-a is…
      b.send({ type: 'offer', to: 'agent-a', sdp: `before-${round}` });
      const current = clients.find(
        (c) =>
          c.frames.some((f) => f.type === 'registered' && f.agent_id === 'agent-a') &&
          c.ws.readyState === c.ws.OPEN,
      )!;
      expect(await current.next('offer')).toMatchObject({ from: 'agent-b', sdp: `before-${round}` });
      // …then agent-a moves, and b sends at once.
      const moved = await client([s1, s3][round % 2 === 0 ? 1 : 0]!);
      await moved.register('agent-a', a.keys);
      b.send({ type: 'offer', to: 'agent-a', sdp: `after-${round}` });
      expect(await moved.next('offer')).toMatchObject({ from: 'agent-b', sdp: `after-${round}` });
      expect((await current.closed).code).toBe(4409);
    }
  });

  it('of two agents registering at once on two instances, exactly one lists the other (so one offers)', async () => {
    const [s1, s2] = [await instance(), await instance()];
    for (let round = 0; round < 10; round++) {
      const [x, y] = [await client(s1), await client(s2)];
      const [hx, hy] = [await x.next('hello'), await y.next('hello')];
      x.send(x.registerFrame(`x-${round}`, hx.nonce));
      y.send(y.registerFrame(`y-${round}`, hy.nonce));
      const [rx, ry] = [await x.next('registered'), await y.next('registered')];
      const xSeesY = rx.peers.some((p: { agent_id: string }) => p.agent_id === `y-${round}`);
      const ySeesX = ry.peers.some((p: { agent_id: string }) => p.agent_id === `x-${round}`);
      expect(xSeesY !== ySeesX).toBe(true);
      // The one that does not list the other hears it joined.
      expect(await (xSeesY ? y : x).next('agent-joined')).toMatchObject({
        agent_id: xSeesY ? `x-${round}` : `y-${round}`,
      });
      x.ws.terminate();
      y.ws.terminate();
    }
  });

  it('refuses an agent id held by another key on every instance, and a register proof replayed on another instance', async () => {
    const [s1, s2] = [await instance(), await instance()];
    const a = await client(s1);
    const hello = await a.next('hello');
    const captured = a.registerFrame('agent-a', hello.nonce);
    a.send(captured);
    await a.next('registered');

    // Same id, another key, another instance.
    const thief = await client(s2);
    thief.send(thief.registerFrame('agent-a', (await thief.next('hello')).nonce));
    expect(await thief.next('error')).toMatchObject({ code: 'id_key_mismatch' });
    expect((await thief.closed).code).toBe(4409);

    // The captured frame, byte for byte, on another instance: its proof names a nonce s2 never
    // issued to this socket, so it fails, even though the key is the holder's own.
    const replay = await client(s2);
    await replay.next('hello');
    replay.send(captured);
    expect(await replay.next('error')).toMatchObject({ code: 'bad_signature' });
    expect((await replay.closed).code).toBe(4401);
    // And on the instance that issued the nonce: single-use.
    const again = await client(s1);
    await again.next('hello');
    again.send(captured);
    expect((await again.closed).code).toBe(4401);
    expect((await getJson(`${s2.http}/peers/agent-a`)).json.public_key).toBe(toBase64url(a.keys.publicKey));
    expect(a.ws.readyState).toBe(a.ws.OPEN);

    // The holder reconnecting through another instance replaces its old socket (4409 there).
    const moved = await client(s2);
    await moved.register('agent-a', a.keys);
    expect((await a.closed).code).toBe(4409);
    expect((await getJson(`${s1.http}/peers/agent-a`)).json.instance_id).toBe(s2.server.core.deps.instanceId);
  });

  it('admin calls from any instance reach every agent; rotation status counts cluster-wide', async () => {
    const [s1, s2, s3] = [await instance(), await instance(), await instance()];
    const cs: TestClient[] = [];
    for (const [n, s] of [s1, s2, s3, s3].entries()) {
      const c = await client(s!);
      await c.register(`agent-${n}`);
      cs.push(c);
    }
    const bw = await postJson(`${s1.http}/config/bandwidth`, {
      enableBandwidthAdaptation: true,
      maxBitrateMbps: 1,
    });
    expect(bw.json).toMatchObject({ status: 'ok', pushed: 4 });
    for (const c of cs)
      expect((await c.next('config')).bandwidth).toEqual({
        enableBandwidthAdaptation: true,
        maxBitrateMbps: 1,
      });
    expect((await getJson(`${s3.http}/config`)).json.bandwidth).toMatchObject({ maxBitrateMbps: 1 });

    const turn = await postJson(
      `${s3.http}/admin/reload-config`,
      { turn_servers: ['turn:127.0.0.1:3479'] },
      ADMIN,
    );
    expect(turn.status).toBe(200);
    for (const c of cs) expect((await c.next('config')).turn_servers).toEqual(['turn:127.0.0.1:3479']);

    const started = await postJson(`${s2.http}/admin/rotate-keys`, { rotation_reason: 'test' }, ADMIN);
    expect(started.json).toMatchObject({ status: 'started', total: 4 });
    const rotation_id = started.json.rotation_id;
    for (const c of cs) expect(await c.next('rotate-keys')).toMatchObject({ rotation_id });
    cs[0]!.send({ type: 'keys-rotated', rotation_id });
    cs[3]!.send({ type: 'keys-rotated', rotation_id });
    await until('two of four counted on s1', async () => {
      const st = (await getJson(`${s1.http}/admin/key-rotation-status`)).json;
      return st.completed === 2 && st.total === 4 && st.status === 'in_progress' ? st : undefined;
    });
    cs[1]!.send({ type: 'keys-rotated', rotation_id });
    cs[2]!.send({ type: 'keys-rotated', rotation_id });
    const done = await until('rotation completed, seen from s3', async () => {
      const st = (await getJson(`${s3.http}/admin/key-rotation-status`)).json;
      return st.status === 'completed' ? st : undefined;
    });
    expect(done).toMatchObject({ completed: 4, total: 4, pending: [] });
  });

  it('rebuilds the registry from live sockets after Redis restarts empty', async () => {
    const [s1, s2] = [await instance(), await instance()];
    const a = await client(s1);
    await a.register('agent-a');
    const b = await client(s2);
    await b.register('agent-b');
    redis = await redis.restart();
    await until(
      'both agents registered again, seen from either instance',
      async () =>
        (await ids(s1)).join() === 'agent-a,agent-b' && (await ids(s2)).join() === 'agent-a,agent-b',
      10_000,
    );
    await until(
      'both instances healthy',
      async () =>
        (await getJson(`${s1.http}/health`)).json.status === 'ok' &&
        (await getJson(`${s2.http}/health`)).json.status === 'ok',
    );
    // Relay works again across instances (each resubscribed to its channels).
    await until('relay from s1 to s2 after the restart', async () => {
      a.send({ type: 'offer', to: 'agent-b', sdp: 'after-restart' });
      return (await b.next('offer', 500).catch(() => undefined))?.sdp === 'after-restart';
    });
  });

  it('keeps serving the agents it holds while Redis is unreachable, says degraded, and recovers', async () => {
    const s1 = await instance();
    const a = await client(s1);
    await a.register('agent-a');
    const b = await client(s1);
    await b.register('agent-b');
    await a.next('agent-joined');
    await redis.stop();
    const health = await until('degraded', async () => {
      const h = await getJson(`${s1.http}/health`);
      return h.json.status === 'degraded' ? h : undefined;
    });
    expect(health.status).toBe(200);
    expect(health.text).not.toContain('"status":"ok"');
    // Agents held here still signal to each other.
    a.send({ type: 'offer', to: 'agent-b', sdp: 'during-outage' });
    expect(await b.next('offer')).toMatchObject({ from: 'agent-a', sdp: 'during-outage' });
    // A new registration is refused (try again later) rather than joining a split view.
    const late = await client(s1);
    late.send(late.registerFrame('agent-c', (await late.next('hello')).nonce));
    expect(await late.next('error')).toMatchObject({ code: 'cluster_unavailable' });
    expect((await late.closed).code).toBe(1013);
    // The instance's log says why, which the agent is not told.
    expect(s1.logs.find((l) => l.msg === 'registration refused: cluster_unavailable')).toMatchObject({
      level: 'error',
      fields: { error: expect.stringMatching(/^cluster registry unreachable: .+/), refused: 1 },
    });
    // An agent that leaves meanwhile is announced here at once, and gone from Redis on recovery.
    b.close();
    expect(await a.next('agent-left')).toMatchObject({ agent_id: 'agent-b' });
    expect((await getJson(`${s1.http}/agents`)).status).toBe(503);

    redis = await redis.resume();
    await until('healthy again', async () => (await getJson(`${s1.http}/health`)).json.status === 'ok');
    expect(await ids(s1)).toEqual(['agent-a']);
    const c = await client(s1);
    expect((await c.register('agent-c')).peers.map((p: { agent_id: string }) => p.agent_id)).toEqual([
      'agent-a',
    ]);
  });

  it("lets a mesh's later registrations go on only once its first one's SUBSCRIBE is answered", async () => {
    const { cluster } = await instance();
    // Which joins had returned, each time one returns: none may return before the first (the one
    // that sends the SUBSCRIBE), or a registration could claim before the instance hears joins.
    const returned: number[] = [];
    await Promise.all(
      [1, 2, 3].map((n) =>
        cluster.joinMesh('m-sub').then(() => {
          returned.push(n);
        }),
      ),
    );
    expect(returned).toEqual([1, 2, 3]);
    expect((await cluster.cmd.call('PUBSUB', 'CHANNELS', `${prefix}ann:m-sub`)) as string[]).toHaveLength(1);
  });
});
