// Issue 21, point 1: an agent id belongs to its key. Reproductions against real signaling servers on
// loopback: the squatter who took agent-1 once it disconnected, the allow-list that let agent-2's key
// register as agent-1, bindings surviving a restart, and the operator's way out (`agents rebind`).
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair, type KeyPair, keyId, toBase64url } from '../../src/crypto/ed25519.js';
import { loadAllowList } from '../../src/services/signaling/allow-list.js';
import { IdentityFile } from '../../src/services/signaling/identities.js';
import { MemoryRegistry } from '../../src/services/signaling/registry.js';
import { run, tempDir } from '../helpers/cli.js';
import { startSignalingProcess } from '../helpers/processes.js';
import {
  ADMIN,
  connect,
  getJson,
  postJson,
  type RunningSignaling,
  startSignaling,
  type TestClient,
} from '../helpers/signaling.js';

let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function server(overrides: Parameters<typeof startSignaling>[0] = {}): Promise<RunningSignaling> {
  const s = await startSignaling(overrides);
  cleanups.push(s.stop);
  return s;
}

async function client(url: string): Promise<TestClient> {
  const c = await connect(url);
  cleanups.push(() => c.ws.terminate());
  return c;
}

/** Sends a register frame for `id` under `keys` and returns the error and close it earns. */
async function refused(url: string, id: string, keys: KeyPair) {
  const c = await client(url);
  c.send(c.registerFrame(id, (await c.next('hello')).nonce, keys));
  return { error: await c.next('error'), closed: await c.closed };
}

const b64 = (k: KeyPair) => toBase64url(k.publicKey);

describe('agent ids bound to keys (issue 21.1)', () => {
  it('refuses a squatter once the owner has gone (4409 id_key_mismatch, audited), and takes the owner back', async () => {
    const s = await server();
    const owner = await client(s.url);
    await owner.register('agent-1');
    owner.close();
    await owner.closed;
    expect((await getJson(`${s.http}/agents`)).json.agents).toEqual([]);

    const squatter = generateKeyPair();
    const r = await refused(s.url, 'agent-1', squatter);
    expect(r.error).toMatchObject({ code: 'id_key_mismatch' });
    expect(r.error.message).toContain('ifmesh agents rebind agent-1');
    expect(r.closed).toEqual({ code: 4409, reason: 'id_key_mismatch' });
    expect(s.events.find((e) => e.event === 'agent_id_key_mismatch')).toMatchObject({
      agent_id: 'agent-1',
      severity: 'warning',
      metadata: { bound_key_id: keyId(owner.keys.publicKey), presented_key_id: keyId(squatter.publicKey) },
    });
    expect((await getJson(`${s.http}/metrics`)).text).toMatch(/^webrtc_unauthorized_attempts_total 1$/m);

    // The real agent-1 is not locked out (before the fix it got agent_id_taken).
    const back = await client(s.url);
    expect(await back.register('agent-1', owner.keys)).toMatchObject({ type: 'registered' });
  });

  it('keeps bindings in the state directory: a restarted server, and another instance sharing it, refuse the squatter', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const file = path.join(tmp.dir, 'signaling-identities.ndjson');
    const first = await startSignaling({ registry: new MemoryRegistry(new IdentityFile(file)) });
    const owner = await connect(first.url);
    await owner.register('agent-1');
    owner.ws.terminate();
    await first.stop();
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const second = await server({ registry: new MemoryRegistry(new IdentityFile(file)) });
    const standby = await server({
      instanceId: 'standby',
      registry: new MemoryRegistry(new IdentityFile(file)),
    });
    for (const s of [second, standby])
      expect((await refused(s.url, 'agent-1', generateKeyPair())).closed.code).toBe(4409);
    // A binding made on one instance is seen by the other at its next registration.
    const fresh = await client(standby.url);
    await fresh.register('agent-2');
    expect((await refused(second.url, 'agent-2', generateKeyPair())).error.code).toBe('id_key_mismatch');
    const again = await client(second.url);
    expect(await again.register('agent-1', owner.keys)).toMatchObject({ type: 'registered' });
  });

  it('shares one log between instances: of two first bindings of an id, the earlier line wins for both', () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const file = path.join(tmp.dir, 'signaling-identities.ndjson');
    const [a, b] = [new IdentityFile(file), new IdentityFile(file)];
    const bind = (key: string) => ({
      op: 'bind' as const,
      binding: { agent_id: 'x', public_key: key, key_id: key, bound_at: 't', via: 'first_use' as const },
    });
    a.commit([bind('K1')]);
    // b decided before it saw a's line (it never read the log), then appends its own.
    b.commit([bind('K2')]);
    expect([a.binding('x')?.public_key, b.binding('x')?.public_key]).toEqual(['K1', 'K1']);
    // A rebind replaces; a revocation is kept once.
    b.commit([{ op: 'bind', binding: { ...bind('K3').binding, via: 'rebind' } }]);
    for (let i = 0; i < 100; i++)
      a.commit([
        {
          op: 'revoke',
          revocation: { public_key: 'K1', key_id: 'K1', agent_id: 'x', revoked_at: 't', reason: 'rebound' },
        },
      ]);
    expect(a.binding('x')?.public_key).toBe('K3');
    expect(b.revocations()).toHaveLength(1);
    // Opened again, the redundant log is compacted to its two live entries.
    const c = new IdentityFile(file);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
    expect([c.binding('x')?.public_key, c.revocation('K1')?.reason]).toEqual(['K3', 'rebound']);
    expect(a.binding('x')?.public_key).toBe('K3');
  });

  it('`signaling serve` keeps them under --state-dir across a restart', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const state = path.join(tmp.dir, 'state');
    const first = await startSignalingProcess(['--state-dir', state]);
    const owner = await connect(first.url);
    await owner.register('agent-1');
    owner.ws.terminate();
    await first.stop();
    const second = await startSignalingProcess(['--state-dir', state]);
    cleanups.push(() => second.stop());
    expect((await refused(second.url, 'agent-1', generateKeyPair())).closed).toEqual({
      code: 4409,
      reason: 'id_key_mismatch',
    });
  });

  it('checks id and key together on the allow-list, and refuses a list with a key alone', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const [k1, k2] = [generateKeyPair(), generateKeyPair()];
    const list = path.join(tmp.dir, 'allowed.txt');
    writeFileSync(list, `# fleet\n${b64(k1)} agent-1\n${b64(k2)} agent-2  # the second\n`);
    const s = await server({ allowList: loadAllowList(readFileSync(list, 'utf8'), list) });
    // agent-2's key as agent-1: before the fix, the list checked the key alone and let it in.
    const r = await refused(s.url, 'agent-1', k2);
    expect(r.error).toMatchObject({
      code: 'key_not_allowed',
      message: 'agent-1 is on the allow-list with another key',
    });
    expect(r.closed.code).toBe(4401);
    expect((await refused(s.url, 'agent-9', k1)).error.message).toBe('agent-9 is not on the allow-list');
    const ok = await client(s.url);
    expect(await ok.register('agent-1', k1)).toMatchObject({ type: 'registered' });

    const keyOnly = path.join(tmp.dir, 'key-only.txt');
    writeFileSync(keyOnly, `${b64(k1)}\n`);
    expect(() => loadAllowList(readFileSync(keyOnly, 'utf8'), keyOnly)).toThrow(
      /key-only\.txt:1: the key has no agent id/,
    );
    const cli = await run([
      'signaling',
      'serve',
      '--port',
      '0',
      '--allow-keys',
      keyOnly,
      '--state-dir',
      tmp.dir,
    ]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('the key has no agent id');
  });

  it('`ifmesh agents rebind` moves the id to a new key: the old one is revoked, its connection closed, audited', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const s = await server();
    const old = await client(s.url);
    await old.register('agent-1');
    const next = generateKeyPair();
    const cli = (args: string[], token = ADMIN) =>
      run(['agents', ...args, '--signaling', s.http, '--state-dir', tmp.dir, '--json'], {
        env: { SIGNALING_ADMIN_TOKEN: token },
      });

    expect(
      (await postJson(`${s.http}/admin/agents/rebind`, { agent_id: 'agent-1', public_key: b64(next) }))
        .status,
    ).toBe(401);
    expect((await cli(['rebind', 'agent-1', '--key', b64(next)], 'wrong')).code).toBe(4);
    expect((await cli(['rebind', 'agent-1', '--key', 'not-a-key'])).code).toBe(2);
    expect((await getJson(`${s.http}/agents`)).json.agents[0].public_key).toBe(b64(old.keys));

    const r = await cli(['rebind', 'agent-1', '--key', b64(next), '--reason', 'lost its disk']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      agent_id: 'agent-1',
      binding: { public_key: b64(next), via: 'rebind' },
      previous: { public_key: b64(old.keys) },
      revoked: { public_key: b64(old.keys), reason: 'rebound' },
      disconnected: 1,
    });
    expect(await old.closed).toEqual({ code: 4409, reason: 'id_key_mismatch' });
    expect(s.events.find((e) => e.event === 'agent_rebound')).toMatchObject({
      agent_id: 'agent-1',
      metadata: {
        reason: 'lost its disk',
        key_id: keyId(next.publicKey),
        revoked_key_id: keyId(old.keys.publicKey),
      },
    });
    // The old key is dead under any id; the new one registers.
    expect((await refused(s.url, 'agent-1', old.keys)).error.code).toBe('key_revoked');
    expect((await refused(s.url, 'agent-7', old.keys)).closed.code).toBe(4401);
    const fresh = await client(s.url);
    expect(await fresh.register('agent-1', next)).toMatchObject({ type: 'registered' });
    // Rebinding to a revoked key is refused (exit 1).
    const back = await cli(['rebind', 'agent-1', '--key', b64(old.keys)]);
    expect(back.code).toBe(1);
    expect(JSON.parse(back.stdout).error.code).toBe('key_revoked');
    const listed = await getJson(`${s.http}/agents`);
    expect(listed.json.agents.map((a: { public_key: string }) => a.public_key)).toEqual([b64(next)]);
  });
});
