// Issue 21, point 2: a rotation revokes. `ifmesh agent run --key FILE` (a real process) writes the
// rotated key to its key file (atomically, 0600, the old file kept as `.rotated-<time>`), signaling
// refuses the old key from then on, and the restarted agent comes back with the new key, even when
// its re-registration never reached signaling before it stopped.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSigner, generateKeyPair, type KeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import { newIdentity, readIdentity, writeIdentity, writeRotatedIdentity } from '../../src/crypto/key-file.js';
import { rotationStatement } from '../../src/protocol/signaling.js';
import { tempDir } from '../helpers/cli.js';
import { type Service, startService } from '../helpers/processes.js';
import {
  ADMIN,
  connect,
  getJson,
  postJson,
  type RunningSignaling,
  startSignaling,
} from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function runAgent(sig: RunningSignaling, keyFile: string, state: string): Promise<Service> {
  return startService(
    [
      'agent',
      'run',
      '--id',
      'rot-file',
      '--key',
      keyFile,
      '--signaling',
      sig.url,
      '--stun',
      'stun:127.0.0.1:3478',
      '--loopback',
      '--state-dir',
      state,
    ],
    {},
  );
}

const b64 = (k: Uint8Array) => toBase64url(k);
const listed = async (sig: RunningSignaling) =>
  ((await getJson(`${sig.http}/agents`)).json.agents as { agent_id: string; public_key: string }[]).find(
    (a) => a.agent_id === 'rot-file',
  )?.public_key;

async function registerWith(sig: RunningSignaling, keys: KeyPair) {
  const c = await connect(sig.url);
  c.send(c.registerFrame('rot-file', (await c.next('hello')).nonce, keys));
  const first = await c.next();
  c.ws.terminate();
  return first;
}

async function setup() {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const { keyPath, pubPath, identity } = await writeIdentity(
    path.join(tmp.dir, 'keys'),
    newIdentity('rot-file'),
    false,
  );
  const sig = await startSignaling();
  cleanups.push(sig.stop);
  return { keyPath, pubPath, old: identity, sig, state: path.join(tmp.dir, 'state') };
}

describe('rotation revokes (issue 21.2)', () => {
  it('writes the rotated key to the key file, revokes the old key, and a restarted agent comes back with the new one', async () => {
    const { keyPath, pubPath, old, sig, state } = await setup();
    const agent = await runAgent(sig, keyPath, state);
    cleanups.push(() => agent.stop());
    expect((agent.ready.agents as { public_key: string }[])[0]!.public_key).toBe(b64(old.publicKey));

    expect((await postJson(`${sig.http}/admin/rotate-keys`, { rotation_reason: 'test' }, ADMIN)).status).toBe(
      200,
    );
    await waitFor(
      async () => (await getJson(`${sig.http}/admin/key-rotation-status`)).json.status === 'completed',
      'the rotation to complete',
    );
    // The key file holds the new key (0600) and the proof the old key signed; the old file is kept.
    const now = await readIdentity(keyPath);
    expect(b64(now.publicKey)).not.toBe(b64(old.publicKey));
    expect(now.rotation).toMatchObject({ previous_key: b64(old.publicKey), public_key: b64(now.publicKey) });
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    const kept = readdirSync(path.dirname(keyPath)).filter((f) =>
      /^rot-file\.key\.rotated-\d{8}T\d{6}Z/.test(f),
    );
    expect(kept).toHaveLength(1);
    const backup = path.join(path.dirname(keyPath), kept[0]!);
    expect(b64((await readIdentity(backup)).publicKey)).toBe(b64(old.publicKey));
    expect(statSync(backup).mode & 0o777).toBe(0o600);
    expect(readFileSync(pubPath, 'utf8')).toContain(b64(now.publicKey));
    expect(readdirSync(path.dirname(keyPath)).some((f) => f.includes('.tmp-'))).toBe(false);
    expect(await listed(sig)).toBe(b64(now.publicKey));
    expect(sig.events.find((e) => e.event === 'agent_key_rotated')).toMatchObject({ agent_id: 'rot-file' });

    // Before the fix the rotated-out key registered again as soon as the agent left.
    expect(await agent.stop()).toBe(0);
    await waitFor(async () => (await listed(sig)) === undefined, 'the agent to leave');
    expect(await registerWith(sig, old)).toMatchObject({ type: 'error', code: 'key_revoked' });
    // ... and a restarted agent reloaded the old key from disk.
    const again = await runAgent(sig, keyPath, state);
    cleanups.push(() => again.stop());
    expect((again.ready.agents as { public_key: string }[])[0]!.public_key).toBe(b64(now.publicKey));
    expect(await listed(sig)).toBe(b64(now.publicKey));
  });

  it('comes back with the new key even if signaling never saw the rotation (the proof in the key file moves the binding)', async () => {
    const { keyPath, old, sig, state } = await setup();
    const first = await runAgent(sig, keyPath, state);
    expect(await first.stop()).toBe(0);
    // The agent wrote its rotated key, then stopped before re-registering.
    const next = generateKeyPair();
    const proof = {
      previous_key: b64(old.publicKey),
      public_key: b64(next.publicKey),
      signature: b64(createSigner(old.seed).sign(rotationStatement('rot-file', b64(next.publicKey)))),
    };
    await writeRotatedIdentity(keyPath, next, proof);
    const agent = await runAgent(sig, keyPath, state);
    cleanups.push(() => agent.stop());
    expect(await listed(sig)).toBe(b64(next.publicKey));
    expect(await registerWith(sig, old)).toMatchObject({ code: 'key_revoked' });
  });
});
