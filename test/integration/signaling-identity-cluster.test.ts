// Issue 21, points 1 and 2 across a Redis cluster (a real redis-server on a loopback port): the
// id → key binding, a rotation's revocation and an operator's rebind made on one instance hold on
// every other; and a Redis restarted empty gets them back from the instances' mirrors.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSigner, generateKeyPair, type KeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import { rotationStatement } from '../../src/protocol/signaling.js';
import { IdentityFile } from '../../src/services/signaling/identities.js';
import { tempDir } from '../helpers/cli.js';
import { type ClusterInstance, startClusterInstance, until } from '../helpers/cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { ADMIN, connect, getJson, postJson, type TestClient } from '../helpers/signaling.js';

let redis: TestRedis;
let prefix: string;
let tmp: { dir: string; cleanup: () => void };
const instances: ClusterInstance[] = [];
const clients: TestClient[] = [];

beforeEach(async () => {
  redis = await startRedis();
  prefix = `id-${randomUUID()}:`;
  tmp = tempDir();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(instances.splice(0).map((i) => i.stop()));
  await redis.cleanup();
  tmp.cleanup();
});

/** An instance whose state directory (shared by the test's instances) mirrors the bindings. */
async function instance(): Promise<ClusterInstance> {
  const i = await startClusterInstance(redis.url, prefix);
  i.cluster.registry.mirror = new IdentityFile(path.join(tmp.dir, 'signaling-identities.ndjson'));
  instances.push(i);
  return i;
}
async function client(i: ClusterInstance): Promise<TestClient> {
  const c = await connect(i.url);
  clients.push(c);
  return c;
}
const b64 = (k: KeyPair) => toBase64url(k.publicKey);

/** The register frame of an agent that rotated from `from` to `to`. */
function rotatedFrame(c: TestClient, id: string, nonce: string, from: KeyPair, to: KeyPair) {
  return {
    ...c.registerFrame(id, nonce, to),
    rotation: {
      previous_key: b64(from),
      signature: toBase64url(createSigner(from.seed).sign(rotationStatement(id, b64(to)))),
    },
  };
}

async function attempt(i: ClusterInstance, id: string, keys: KeyPair) {
  const c = await client(i);
  c.send(c.registerFrame(id, (await c.next('hello')).nonce, keys));
  const f = await c.next();
  return f.type === 'registered'
    ? { ok: true as const }
    : { ok: false as const, code: f.code, closed: await c.closed };
}

describe('identity bindings across a Redis cluster', () => {
  it('binds cluster-wide; a rotation revokes the old key and a rebind moves the id, on every instance', async () => {
    const [s1, s2] = [await instance(), await instance()];
    const k1 = generateKeyPair();
    const owner = await client(s1);
    await owner.register('agent-1', k1);
    owner.close();
    await owner.closed;
    // A squatter on the other instance, once the owner has gone.
    expect(await attempt(s2, 'agent-1', generateKeyPair())).toEqual({
      ok: false,
      code: 'id_key_mismatch',
      closed: { code: 4409, reason: 'id_key_mismatch' },
    });

    // The owner rotates, registering the new key on s2 with a proof from the old one.
    const watcher = await client(s1);
    await watcher.register('watcher');
    const k2 = generateKeyPair();
    const rotated = await client(s2);
    rotated.send(rotatedFrame(rotated, 'agent-1', (await rotated.next('hello')).nonce, k1, k2));
    expect(await rotated.next('registered')).toMatchObject({ agent_id: 'agent-1' });
    const joined = await watcher.next('agent-joined');
    expect(joined).toMatchObject({ agent_id: 'agent-1', public_key: b64(k2), rekeyed: true });
    expect(joined.rotations).toEqual([
      expect.objectContaining({ previous_key: b64(k1), public_key: b64(k2) }),
    ]);
    // The old key is dead everywhere, under any id; a forged proof for a key never bound is refused.
    expect(await attempt(s1, 'agent-1', k1)).toMatchObject({ ok: false, code: 'key_revoked' });
    expect(await attempt(s2, 'agent-x', k1)).toMatchObject({ ok: false, code: 'key_revoked' });
    const forger = await client(s1);
    const k9 = generateKeyPair();
    forger.send(rotatedFrame(forger, 'agent-1', (await forger.next('hello')).nonce, generateKeyPair(), k9));
    expect(await forger.next('error')).toMatchObject({ code: 'id_key_mismatch' });

    // An operator rebinds agent-1 through s1: s2 drops the registration it holds under k2.
    const k3 = generateKeyPair();
    const r = await postJson(
      `${s1.http}/admin/agents/rebind`,
      { agent_id: 'agent-1', public_key: b64(k3) },
      ADMIN,
    );
    expect(r.json).toMatchObject({ status: 'rebound', revoked: { public_key: b64(k2) }, disconnected: 1 });
    expect((await rotated.closed).code).toBe(4409);
    expect(await watcher.next('agent-left')).toMatchObject({ agent_id: 'agent-1' });
    expect(await attempt(s2, 'agent-1', k2)).toMatchObject({ ok: false, code: 'key_revoked' });
    expect(await attempt(s2, 'agent-1', k3)).toEqual({ ok: true });
    expect((await getJson(`${s2.http}/admin/agents/bindings`)).status).toBe(401);
    const listed = await fetch(`${s2.http}/admin/agents/bindings`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    const body = (await listed.json()) as {
      bindings: { agent_id: string; public_key: string }[];
      revoked: unknown[];
    };
    expect(body.bindings.find((b) => b.agent_id === 'agent-1')?.public_key).toBe(b64(k3));
    expect(body.revoked).toHaveLength(2);
  });

  it('re-seeds a Redis restarted empty from the mirrors: the squatter and the revoked key stay out', async () => {
    const [s1, s2] = [await instance(), await instance()];
    const [k1, k2] = [generateKeyPair(), generateKeyPair()];
    const owner = await client(s1);
    await owner.register('agent-1', k1);
    owner.close();
    const rotated = await client(s1);
    rotated.send(rotatedFrame(rotated, 'agent-1', (await rotated.next('hello')).nonce, k1, k2));
    await rotated.next('registered');
    rotated.close();
    await rotated.closed;

    redis = await redis.restart();
    await until('both instances healthy again', async () => {
      for (const s of [s1, s2]) if ((await getJson(`${s.http}/health`)).json.status !== 'ok') return false;
      return true;
    });
    expect(await attempt(s2, 'agent-1', generateKeyPair())).toMatchObject({
      ok: false,
      code: 'id_key_mismatch',
    });
    expect(await attempt(s2, 'agent-1', k1)).toMatchObject({ ok: false, code: 'key_revoked' });
    expect(await attempt(s1, 'agent-1', k2)).toEqual({ ok: true });
  });
});
