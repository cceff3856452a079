// The cluster trusts no one by default: against a real password-protected redis-server and real
// `ifmesh signaling serve` processes, whoever can reach Redis but lacks SIGNALING_CLUSTER_SECRET
// publishes forged, malformed, mis-addressed, stale and replayed messages on every channel. Each
// is dropped, counted in /metrics by channel and reason, and logged; no agent sees any of it; the
// instances stay up and the mesh keeps working. ACL users and rediss:// work too.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import { probeRedis } from '../../src/exec/redis.js';
import { ClusterCodec, clusterKey } from '../../src/services/signaling/cluster-messages.js';
import { requireBinary } from '../helpers/binaries.js';
import { ROOT } from '../helpers/cli.js';
import { until } from '../helpers/cluster.js';
import { trackPid } from '../helpers/pids.js';
import { freePort, type Service, startSignalingProcess } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis.js';
import { ADMIN, connect, getJson, postJson, type TestClient } from '../helpers/signaling.js';

const SECRET = 'trust-test-cluster-secret';
const PREFIX = 'ifmesh:';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function stateDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'ifmesh-trust-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function instance(
  id: string,
  clusterUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<Service> {
  const svc = await startSignalingProcess(
    ['--instance-id', id, '--cluster-ttl', '3000', '--state-dir', stateDir()],
    {
      SIGNALING_CLUSTER_URL: clusterUrl,
      SIGNALING_CLUSTER_SECRET: SECRET,
      SIGNALING_ADMIN_TOKEN: ADMIN,
      ...extraEnv,
    },
  );
  cleanups.push(async () => {
    await svc.stop();
  });
  return svc;
}

async function agent(svc: Service, id: string): Promise<TestClient> {
  const c = await connect(svc.url);
  cleanups.push(() => c.ws.terminate());
  await c.register(id);
  return c;
}

const httpOf = (svc: Service) => String(svc.ready.http_url);

/** webrtc_signaling_cluster_messages_dropped_total by "channel/reason". */
async function drops(svc: Service): Promise<Record<string, number>> {
  const text = (await getJson(`${httpOf(svc)}/metrics`)).text;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(
    /^webrtc_signaling_cluster_messages_dropped_total\{channel="(\w+)",reason="(\w+)"\} (\d+)$/gm,
  ))
    out[`${m[1]}/${m[2]}`] = Number(m[3]);
  return out;
}

const alive = (svc: Service) => svc.child.exitCode === null && svc.child.signalCode === null;

describe('signaling cluster messages', () => {
  it('drops forged, malformed, mis-addressed, stale and replayed messages on every channel, counts and logs them, and keeps serving', async () => {
    const redis = await startRedis(undefined, undefined, 'redis-admin-secret');
    cleanups.push(() => redis.cleanup());
    const [s1, s2] = [await instance('t-1', redis.url), await instance('t-2', redis.url)];
    const a = await agent(s1, 'agent-a');
    const b = await agent(s2, 'agent-b');
    expect(await a.next('agent-joined')).toMatchObject({ agent_id: 'agent-b' });

    // Whoever holds the Redis password but not the cluster secret.
    const evil = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    cleanups.push(() => evil.disconnect());
    const admin = `${PREFIX}admin`;
    const ann = `${PREFIX}ann:default`;
    const relay1 = `${PREFIX}relay:t-1`;
    const relay2 = `${PREFIX}relay:t-2`;

    // A legitimate push, captured off the wire to be replayed later.
    const spy = new Redis(redis.url);
    cleanups.push(() => spy.disconnect());
    const captured: string[] = [];
    spy.on('message', (_ch: string, m: string) => captured.push(m));
    await spy.subscribe(admin);
    const legit = await postJson(
      `${httpOf(s1)}/admin/reload-config`,
      { turn_servers: ['turn:127.0.0.1:3478?transport=udp'] },
      ADMIN,
    );
    expect(legit.status).toBe(200);
    for (const c of [a, b])
      expect(await c.next('config')).toMatchObject({ turn_servers: ['turn:127.0.0.1:3478?transport=udp'] });
    await until('the legitimate push on the wire', () => captured.length === 1);

    const evilKey = toBase64url(generateKeyPair().publicKey);
    const joined = JSON.stringify({ type: 'agent-joined', agent_id: 'agent-evil', public_key: evilKey });
    const offer = JSON.stringify({ type: 'offer', from: 'agent-evil', sdp: 'v=0 evil' });
    const evilTurn = ['turn:evil.example:3478?transport=udp'];
    // The pre-HMAC formats, exactly as an instance used to accept them: the first one is the push
    // that killed every instance with an uncaught TypeError.
    const legacy: Record<string, unknown[]> = {
      [admin]: [
        { o: 'x', p: { kind: 'reconnect' } },
        {
          o: 'x',
          p: {
            kind: 'config',
            settings: { turnServers: evilTurn },
            frame: { type: 'config', turn_servers: evilTurn },
          },
        },
        {
          o: 'x',
          p: {
            kind: 'block',
            entry: { agent_id: 'agent-a', public_key: null, key_id: null, reason: 'evil', blocked_at: 'now' },
          },
        },
        { o: 'x', p: { kind: 'rotate', rotation: null } },
      ],
      [ann]: [{ o: null, f: joined, a: 'agent-evil' }],
      [relay1]: [
        { to: 'agent-a', mesh: 'default', t: offer },
        { kick: 'agent-a', session: 'whatever' },
      ],
      [relay2]: [{ to: 'agent-b', mesh: 'default', t: offer }],
    };
    const wrong = new ClusterCodec({ key: clusterKey('not-the-secret', PREFIX), instanceId: 'evil' });
    const right = new ClusterCodec({ key: clusterKey(SECRET, PREFIX), instanceId: 'evil' });
    const stale = new ClusterCodec({
      key: clusterKey(SECRET, PREFIX),
      instanceId: 'evil',
      now: () => Date.now() - 10 * 60_000,
    });
    const valid: Record<string, unknown> = {
      [admin]: {
        o: 'x',
        p: {
          kind: 'config',
          settings: { turnServers: evilTurn },
          frame: { type: 'config', turn_servers: evilTurn },
        },
      },
      [ann]: { o: null, f: joined, a: 'agent-evil' },
      [relay1]: { to: 'agent-a', mesh: 'default', t: offer },
      [relay2]: { to: 'agent-b', mesh: 'default', t: offer },
    };
    const malformed: Record<string, unknown> = {
      [admin]: { o: 'x', p: { kind: 'reconnect' } },
      [ann]: { o: null, f: 'not a frame' },
      [relay1]: { to: 5, mesh: 'default', t: offer },
      [relay2]: { kick: 'agent-b' },
    };
    const kind = (ch: string) =>
      (ch === admin ? 'admin' : ch === ann ? 'ann' : 'relay') as 'admin' | 'ann' | 'relay';
    // What each message should be dropped as, on every channel.
    const sent: Record<string, string[]> = {};
    const send = async (ch: string, raw: string, reason: string) => {
      await evil.publish(ch, raw);
      sent[ch] = [...(sent[ch] ?? []), reason];
    };
    for (const ch of [admin, ann, relay1, relay2]) {
      for (const raw of ['', 'not json at all', '{"o":', `${'x'.repeat(43)}.{}`])
        await send(ch, raw, raw.startsWith('xxx') ? 'bad_signature' : 'unsigned');
      for (const m of legacy[ch]!) await send(ch, JSON.stringify(m), 'unsigned');
      await send(ch, wrong.seal(ch, kind(ch), valid[ch] as never), 'bad_signature');
      // Sealed for another channel: an instance's relay frame moved to the other, an announcement
      // moved to the admin channel, and so on.
      const other = ch === relay1 ? relay2 : ch === relay2 ? relay1 : ch === admin ? ann : admin;
      await send(ch, right.seal(other, kind(ch), valid[ch] as never), 'bad_signature');
      await send(ch, right.seal(ch, kind(ch), malformed[ch] as never), 'malformed');
      await send(ch, stale.seal(ch, kind(ch), valid[ch] as never), 'stale');
    }
    await send(admin, captured[0]!, 'replayed');

    // Every instance subscribed to a channel drops every message on it.
    const expected = (id: 't-1' | 't-2') => {
      const want: Record<string, number> = {};
      for (const [ch, list] of Object.entries(sent)) {
        if ((ch === relay1 && id !== 't-1') || (ch === relay2 && id !== 't-2')) continue;
        for (const reason of list) want[`${kind(ch)}/${reason}`] = (want[`${kind(ch)}/${reason}`] ?? 0) + 1;
      }
      return want;
    };
    for (const [svc, id] of [
      [s1, 't-1'],
      [s2, 't-2'],
    ] as const) {
      const want = expected(id);
      await until(`${id} to count every forged message`, async () => {
        const got = await drops(svc);
        return Object.entries(want).every(([k, v]) => got[k] === v);
      });
      expect(await drops(svc)).toEqual(want);
    }
    expect(expected('t-1')).toMatchObject({
      'admin/unsigned': 7,
      'admin/bad_signature': 3,
      'admin/replayed': 1,
    });

    // Nothing reached an agent, both instances live and answer, and said what they dropped.
    for (const c of [a, b]) {
      expect(c.ws.readyState).toBe(c.ws.OPEN);
      const bad = c.frames.filter(
        (f) =>
          f.agent_id === 'agent-evil' ||
          f.from === 'agent-evil' ||
          f.type === 'reconnect' ||
          (f.type === 'error' && f.code === 'blocked') ||
          JSON.stringify(f).includes('evil.example'),
      );
      expect(bad).toEqual([]);
    }
    for (const svc of [s1, s2]) {
      expect(alive(svc)).toBe(true);
      expect((await getJson(`${httpOf(svc)}/health`)).json).toMatchObject({ status: 'ok', cluster: 'redis' });
      for (const reason of ['unsigned', 'bad_signature', 'malformed', 'stale'])
        expect(svc.stderr()).toMatch(new RegExp(`cluster message dropped.*"reason":"${reason}"`));
    }
    expect(s1.stderr()).toMatch(/cluster message dropped.*"reason":"replayed"/);
    expect(
      (await getJson(`${httpOf(s1)}/agents`)).json.agents.map((x: { agent_id: string }) => x.agent_id).sort(),
    ).toEqual(['agent-a', 'agent-b']);

    // Tampered rotation state in the store is refused the same way, not a 500.
    await evil.set(`${PREFIX}rotation`, '{"rotation_id":5}');
    const status = await getJson(`${httpOf(s2)}/admin/key-rotation-status`);
    expect(status).toMatchObject({ status: 200, json: { status: 'idle' } });
    await until('the tampered rotation counted', async () => (await drops(s2))['store/malformed'] === 1);

    // The mesh still works across instances, relay and pushes alike.
    b.send({ type: 'offer', to: 'agent-a', sdp: 'v=0 real' });
    expect(await a.next('offer')).toMatchObject({ from: 'agent-b', sdp: 'v=0 real' });
    const pushed = await postJson(
      `${httpOf(s2)}/admin/reload-config`,
      { turn_servers: ['turn:127.0.0.1:3479?transport=udp'] },
      ADMIN,
    );
    expect(pushed.status).toBe(200);
    expect(await a.next('config')).toMatchObject({ turn_servers: ['turn:127.0.0.1:3479?transport=udp'] });
  }, 60_000);

  it('works with a Redis ACL user limited to the ifmesh keys and channels; a wrong password leaves the instance degraded, not down', async () => {
    const redis = await startRedis(undefined, undefined, 'redis-admin-secret');
    cleanups.push(() => redis.cleanup());
    const root = new Redis(redis.url);
    cleanups.push(() => root.disconnect());
    // What docs/signaling.md "Scaling out" recommends for production.
    await root.call(
      'ACL',
      'SETUSER',
      'ifmesh',
      'on',
      '>app-secret-pw',
      '~ifmesh:*',
      '&ifmesh:*',
      '+@all',
      '-@dangerous',
      '+info',
    );
    const url = `redis://ifmesh:app-secret-pw@127.0.0.1:${redis.port}`;
    expect(await probeRedis(url)).toBe('ok');
    expect(await probeRedis(`redis://ifmesh:wrong@127.0.0.1:${redis.port}`)).toBe('auth');

    const [s1, s2] = [await instance('acl-1', url), await instance('acl-2', url)];
    const a = await agent(s1, 'agent-a');
    const b = await agent(s2, 'agent-b');
    expect(await a.next('agent-joined')).toMatchObject({ agent_id: 'agent-b' });
    b.send({ type: 'offer', to: 'agent-a', sdp: 'v=0 acl' });
    expect(await a.next('offer')).toMatchObject({ from: 'agent-b' });
    for (const svc of [s1, s2]) {
      expect((await getJson(`${httpOf(svc)}/health`)).json).toMatchObject({ status: 'ok', cluster: 'redis' });
      // The URL came through the environment: neither the password nor the secret is in argv.
      const argv = readFileSync(`/proc/${svc.pid}/cmdline`, 'utf8');
      expect(argv).not.toContain('app-secret-pw');
      expect(argv).not.toContain(SECRET);
      expect(svc.stderr()).not.toContain('app-secret-pw');
    }
    // The ACL holds: the user cannot touch anything outside its prefix.
    const app = new Redis(url);
    cleanups.push(() => app.disconnect());
    await expect(app.set('other:key', '1')).rejects.toThrow(/NOPERM/);
    await expect(app.publish('other-channel', 'x')).rejects.toThrow(/NOPERM/);

    const bad = await instance('acl-bad', `redis://ifmesh:wrong@127.0.0.1:${redis.port}`);
    expect((await getJson(`${httpOf(bad)}/health`)).json).toMatchObject({ status: 'degraded' });
    expect(alive(bad)).toBe(true);
    expect(bad.stderr()).not.toContain('wrong@');
  }, 60_000);

  it('joins a cluster over rediss:// (TLS), trusting the server through NODE_EXTRA_CA_CERTS', async () => {
    requireBinary('redis-server', 'redis-server');
    const port = await freePort();
    const dir = stateDir();
    const conf = path.join(dir, 'redis.conf');
    writeFileSync(conf, 'requirepass "tls-redis-pw"\n', { mode: 0o600 });
    const cert = path.join(ROOT, 'fixtures/tls/test-cert.pem');
    const key = path.join(ROOT, 'fixtures/tls/test-key.pem');
    const child: ChildProcess = spawn(
      'redis-server',
      [
        conf,
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        cert,
        '--tls-key-file',
        key,
        '--tls-auth-clients',
        'no',
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    );
    trackPid(child.pid);
    cleanups.push(async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    });
    const url = `rediss://:tls-redis-pw@127.0.0.1:${port}`;
    const ca = { NODE_EXTRA_CA_CERTS: cert };
    await until('redis-server on TLS', async () => {
      const r = new Redis(url, {
        tls: { ca: readFileSync(cert) },
        lazyConnect: true,
        retryStrategy: () => null,
      });
      r.on('error', () => {});
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    });
    const [s1, s2] = [await instance('tls-1', url, ca), await instance('tls-2', url, ca)];
    const a = await agent(s1, 'agent-a');
    await agent(s2, 'agent-b');
    expect(await a.next('agent-joined')).toMatchObject({ agent_id: 'agent-b' });
    expect((await getJson(`${httpOf(s1)}/health`)).json).toMatchObject({ status: 'ok', cluster: 'redis' });
    expect(s1.ready.cluster).toBe(`rediss://:***@127.0.0.1:${port}`);
  }, 60_000);
});
