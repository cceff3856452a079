import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import { ROOT } from '../helpers/cli.js';
import {
  connect,
  getJson,
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

async function start(overrides: Parameters<typeof startSignaling>[0] = {}) {
  sig = await startSignaling(overrides);
  return sig;
}
async function client(): Promise<TestClient> {
  const c = await connect(sig!.url);
  clients.push(c);
  return c;
}

describe('signaling WebSocket protocol (CONTRACT §1)', () => {
  it('says hello with a fresh 32-byte nonce and protocol 1', async () => {
    await start();
    const [a, b] = [await client(), await client()];
    const [ha, hb] = [await a.next('hello'), await b.next('hello')];
    expect(ha.protocol).toBe(1);
    expect(Buffer.from(ha.nonce, 'base64url')).toHaveLength(32);
    expect(ha.nonce).not.toBe(hb.nonce);
  });

  it('registers with proof of key; tells peers who joined and who left', async () => {
    const s = await start();
    const a = await client();
    const ra = await a.register('agent-a');
    expect(ra).toMatchObject({ type: 'registered', agent_id: 'agent-a', peers: [] });
    const b = await client();
    const rb = await b.register('agent-b');
    expect(rb.peers).toEqual([{ agent_id: 'agent-a', public_key: toBase64url(a.keys.publicKey) }]);
    expect(await a.next('agent-joined')).toMatchObject({
      agent_id: 'agent-b',
      public_key: toBase64url(b.keys.publicKey),
    });
    b.close();
    expect(await a.next('agent-left')).toMatchObject({ agent_id: 'agent-b' });
    expect(s.events.map((e) => e.event)).toEqual(expect.arrayContaining(['agent_registered', 'agent_left']));
  });

  it('relays offer, answer and ice-candidate with `to` replaced by `from`', async () => {
    await start();
    const [a, b] = [await client(), await client()];
    await a.register('agent-a');
    await b.register('agent-b');
    // A key the sender puts in its offer is not relayed: the offer carries the key agent-b
    // registered with (an extension, for a peer that missed agent-b's agent-joined).
    b.send({ type: 'offer', to: 'agent-a', sdp: 'v=0 offer', public_key: toBase64url(a.keys.publicKey) });
    expect(await a.next('offer')).toEqual({
      type: 'offer',
      from: 'agent-b',
      sdp: 'v=0 offer',
      public_key: toBase64url(b.keys.publicKey),
      __taken: true,
    });
    a.send({ type: 'answer', to: 'agent-b', sdp: 'v=0 answer' });
    const answer = await b.next('answer');
    expect(answer).toMatchObject({ from: 'agent-a', sdp: 'v=0 answer' });
    expect(answer.public_key).toBeUndefined();
    const candidate = {
      candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host',
      sdpMid: '0',
      sdpMLineIndex: 0,
    };
    a.send({ type: 'ice-candidate', to: 'agent-b', candidate });
    const got = await b.next('ice-candidate');
    expect(got).toMatchObject({ from: 'agent-a', candidate });
    expect(got.to).toBeUndefined();
  });

  it('keeps named meshes apart: peers, announcements and relay stay within a mesh', async () => {
    await start();
    const a = await client();
    await a.register('agent-a');
    const x = await client();
    const hx = await x.next('hello');
    x.send({ ...x.registerFrame('agent-x', hx.nonce), metadata: { mesh: 'blue' } });
    expect((await x.next('registered')).peers).toEqual([]);
    const y = await client();
    const hy = await y.next('hello');
    y.send({ ...y.registerFrame('agent-y', hy.nonce), metadata: { mesh: 'blue' } });
    expect((await y.next('registered')).peers.map((p: { agent_id: string }) => p.agent_id)).toEqual([
      'agent-x',
    ]);
    expect(await x.next('agent-joined')).toMatchObject({ agent_id: 'agent-y' });
    y.send({ type: 'offer', to: 'agent-a', sdp: 'x' });
    expect(await y.next('error')).toMatchObject({ code: 'unknown_peer' });
    y.send({ type: 'offer', to: 'agent-x', sdp: 'blue offer' });
    expect(await x.next('offer')).toMatchObject({ from: 'agent-y', sdp: 'blue offer' });
    // A barrier: a's next announcement is b's, sent after y's registration was handled, so an
    // announcement of y to a would have arrived before it.
    const b = await client();
    await b.register('agent-b');
    expect(await a.next('agent-joined')).toMatchObject({ agent_id: 'agent-b' });
    expect(a.frames.filter((f) => f.type === 'agent-joined').map((f) => f.agent_id)).toEqual(['agent-b']);
  });

  it('answers an unknown `to` with unknown_peer and keeps the socket', async () => {
    await start();
    const a = await client();
    await a.register('agent-a');
    a.send({ type: 'offer', to: 'nobody', sdp: 'x' });
    expect(await a.next('error')).toMatchObject({ code: 'unknown_peer', to: 'nobody' });
    a.send({ type: 'challenge' });
    expect((await a.next('hello')).nonce).toBeTruthy();
  });

  it('refuses a forged signature with an error and close 4401', async () => {
    await start();
    const a = await client();
    const hello = await a.next('hello');
    const frame = a.registerFrame('agent-a', hello.nonce);
    frame.public_key = toBase64url(generateKeyPair().publicKey);
    a.send(frame);
    expect(await a.next('error')).toMatchObject({ code: 'bad_signature' });
    expect((await a.closed).code).toBe(4401);
  });

  it('refuses an agent_id held by another key, and lets the same key take over from a new socket', async () => {
    const s = await start();
    const a = await client();
    await a.register('agent-a');
    const thief = await client();
    const hello = await thief.next('hello');
    thief.send(thief.registerFrame('agent-a', hello.nonce));
    expect(await thief.next('error')).toMatchObject({ code: 'id_key_mismatch' });
    expect(await thief.closed).toEqual({ code: 4409, reason: 'id_key_mismatch' });
    expect(
      (await getJson(`${s.http}/agents`)).json.agents.map((x: { agent_id: string }) => x.agent_id),
    ).toEqual(['agent-a']);
    const again = await client();
    await again.register('agent-a', a.keys);
    expect((await a.closed).code).toBe(4409);
    expect((await getJson(`${s.http}/agents`)).json.agents).toHaveLength(1);
  });

  it('refuses a replayed nonce, a reused nonce and an expired one', async () => {
    // The server's clock is the test's: the nonce expires when the test says 30 s have passed.
    let now = Date.now();
    await start({ nonceTtlMs: 30_000, registerTimeoutMs: 60_000, now: () => now });
    const a = await client();
    const b = await client();
    const helloA = await a.next('hello');
    await b.next('hello');
    // b replays a registration signed over a's nonce
    b.send(b.registerFrame('agent-b', helloA.nonce));
    expect(await b.next('error')).toMatchObject({ code: 'bad_signature' });
    expect((await b.closed).code).toBe(4401);
    // a uses its nonce, then tries to use it again
    a.send(a.registerFrame('agent-a', helloA.nonce));
    await a.next('registered');
    a.send(a.registerFrame('agent-a', helloA.nonce));
    expect(await a.next('error')).toMatchObject({ code: 'nonce_used' });
    expect((await a.closed).code).toBe(4401);
    // c waits past the nonce's lifetime
    const c = await client();
    const helloC = await c.next('hello');
    now += 30_001;
    c.send(c.registerFrame('agent-c', helloC.nonce));
    expect(await c.next('error')).toMatchObject({ code: 'nonce_expired' });
    expect((await c.closed).code).toBe(4401);
  });

  it('closes a socket that never registers after the registration timeout', async () => {
    await start({ registerTimeoutMs: 300 });
    const a = await client();
    await a.next('hello');
    expect(await a.next('error', 2000)).toMatchObject({ code: 'registration_timeout' });
    expect((await a.closed).code).toBe(4408);
  });

  it.each([
    ['malformed JSON', '{"type":', 'malformed_json'],
    ['a missing field', JSON.stringify({ type: 'offer', sdp: 'x' }), 'invalid_frame'],
    ['an unknown type', JSON.stringify({ type: 'nonsense' }), 'unknown_type'],
    [
      'a frame over 64 KiB',
      JSON.stringify({ type: 'offer', to: 'agent-b', sdp: 'x'.repeat(70_000) }),
      'frame_too_large',
    ],
  ])('answers %s with an error and close 4400, and keeps serving others', async (_name, text, code) => {
    const s = await start();
    const good = await client();
    await good.register('agent-good');
    const bad = await client();
    await bad.register('agent-bad');
    bad.send(text);
    expect(await bad.next('error')).toMatchObject({ code });
    expect((await bad.closed).code).toBe(4400);
    expect((await getJson(`${s.http}/health`)).text).toContain('"status":"ok"');
    good.send({ type: 'challenge' });
    expect(await good.next('hello')).toBeTruthy();
  });

  it('rate-limits a flooding client, then disconnects it', async () => {
    await start({ rateLimit: { burst: 20, perSecond: 10, disconnectAfter: 200 } });
    const a = await client();
    await a.register('agent-a');
    for (let i = 0; i < 400; i++) a.send({ type: 'challenge' });
    expect(await a.next('error')).toMatchObject({ code: 'rate_limited' });
    expect((await a.closed).code).toBe(4429);
  });

  it('admits only allow-listed keys when an allow-list is given', async () => {
    const file = path.join(ROOT, 'fixtures/signaling/allowed-keys.txt');
    const { loadAllowList } = await import('../../src/services/signaling/allow-list.js');
    const allowed = loadAllowList(readFileSync(file, 'utf8'), file);
    const fixtureSeed = Buffer.from(
      JSON.parse(readFileSync(path.join(ROOT, 'fixtures/keys/agent-allowed.key'), 'utf8')).private_key,
      'base64url',
    );
    const { publicKeyFromSeed } = await import('../../src/crypto/ed25519.js');
    await start({ allowList: allowed });
    const ok = await client();
    expect(
      await ok.register('agent-allowed', {
        seed: new Uint8Array(fixtureSeed),
        publicKey: publicKeyFromSeed(new Uint8Array(fixtureSeed)),
      }),
    ).toMatchObject({ type: 'registered' });
    const other = await client();
    const hello = await other.next('hello');
    other.send(other.registerFrame('agent-other', hello.nonce));
    expect(await other.next('error')).toMatchObject({ code: 'key_not_allowed' });
    expect((await other.closed).code).toBe(4401);
  });

  it('reaps a socket that stops answering pings', async () => {
    const s = await start({ reapAfterMs: 300 });
    const a = await client();
    await a.register('agent-a');
    const b = await client();
    await b.register('agent-b');
    // a stops reading its socket, so it can answer no ping; b sees a leave once the server reaps it.
    (a.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    expect(await b.next('agent-left', 10_000)).toMatchObject({ agent_id: 'agent-a' });
    expect(s.events.find((e) => e.event === 'agent_left' && e.agent_id === 'agent-a')).toBeTruthy();
  });

  it('never negotiates permessage-deflate, even when the client offers it', async () => {
    const s = await start();
    const c = await connect(s.url, { perMessageDeflate: true });
    clients.push(c);
    expect(c.ws.extensions).toBe('');
  });

  it('caps connections per IP and refuses browsers from Origins not on the list', async () => {
    const s = await start({ maxConnectionsPerIp: 3, allowedOrigins: ['https://agents.example'] });
    for (let i = 0; i < 3; i++) await client();
    const fourth = await connect(s.url).catch((e: Error) => e);
    expect(String(fourth)).toContain('429');
    for (const c of clients.splice(0)) c.ws.terminate();
    const wrong = await connect(s.url, { origin: 'https://evil.example' }).catch((e: Error) => e);
    expect(String(wrong)).toContain('403');
    // Accepted once the server has seen the three sockets close (429 until then).
    let right: TestClient | undefined;
    await waitFor(async () => {
      right = await connect(s.url, { origin: 'https://agents.example' }).catch(() => undefined);
      return right !== undefined;
    }, 'the server to release the closed connections');
    clients.push(right!);
    expect(await right!.next('hello')).toBeTruthy();
  });
});
