import { describe, expect, it } from 'vitest';
import { createSigner, generateKeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, MessageVerifier, signingBytes, signMessage } from '../../src/crypto/ifmessage.js';
import { ReplayWindow } from '../../src/crypto/replay.js';
import type { IFMessage } from '../../src/protocol/ifmessage.js';

const NOW = Date.parse('2026-11-22T21:44:37.123Z');
const alice = generateKeyPair();
const signer = createSigner(alice.seed);
const expect_ = { publicKey: alice.publicKey, from: 'agent-1', to: 'agent-2' };

function ping(tsMs = NOW, payload: Record<string, unknown> = {}): IFMessage {
  return signMessage(buildMessage({ from: 'agent-1', to: 'agent-2', type: 'ping', payload }, tsMs), signer);
}

function verifier(now = NOW) {
  return new MessageVerifier({ now: () => now });
}

describe('IFMessage', () => {
  it('has the contract shape and signs the domain-prefixed JCS form', () => {
    const m = ping();
    expect(Object.keys(m).sort()).toEqual(['from', 'id', 'nonce', 'payload', 'sig', 'to', 'ts', 'type', 'v']);
    expect(m.v).toBe(1);
    expect(m.ts).toBe('2026-11-22T21:44:37.123Z');
    expect(Buffer.from(m.nonce, 'base64url')).toHaveLength(16);
    const text = new TextDecoder().decode(signingBytes(m));
    expect(text.startsWith('ifmesh/IFMessage/v1\n{"from":"agent-1","id":')).toBe(true);
    expect(text).not.toContain('"sig"');
  });

  it('gives every message its own nonce and its own millisecond, past a refill of the random pool', () => {
    // 600 messages: more than the 256 nonces one fill of the pool holds.
    const ms = Array.from({ length: 600 }, (_, i) => ping(NOW + (i >> 2)));
    expect(new Set(ms.map((m) => m.nonce)).size).toBe(600);
    expect(ms.every((m) => Buffer.from(m.nonce, 'base64url').length === 16)).toBe(true);
    expect(ms.map((m) => m.ts)).toEqual(ms.map((_, i) => new Date(NOW + (i >> 2)).toISOString()));
    // All accepted by one receiver: no nonce came twice.
    const v = verifier(NOW + 100);
    expect(ms.every((m) => v.verify(m, expect_).ok)).toBe(true);
  });

  it('accepts a fresh, correctly signed message', () => {
    expect(verifier().verify(ping(), expect_)).toMatchObject({ ok: true });
  });

  it.each([
    ['payload', { payload: { n: 2 } }],
    ['type', { type: 'pong' }],
    ['to', { to: 'agent-3' }],
    ['id', { id: '00000000-0000-4000-8000-000000000000' }],
    ['extra field', { extra: true }],
  ])('rejects a tampered %s as bad_signature', (_field, change) => {
    const tampered = { ...ping(), ...change };
    const result = verifier().verify(tampered, { publicKey: alice.publicKey, from: 'agent-1' });
    expect(result).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it('rejects a message signed by another key as bad_signature', () => {
    const mallory = createSigner(generateKeyPair().seed);
    const forged = signMessage(buildMessage({ from: 'agent-1', to: 'agent-2', type: 'ping' }, NOW), mallory);
    expect(verifier().verify(forged, expect_)).toMatchObject({ ok: false, reason: 'bad_signature' });
  });

  it("rejects a `from` that is not the channel's peer as wrong_sender", () => {
    const result = verifier().verify(ping(), { ...expect_, from: 'agent-9' });
    expect(result).toMatchObject({ ok: false, reason: 'wrong_sender' });
  });

  it('rejects timestamps outside ±30 s as stale_timestamp, both ways', () => {
    expect(verifier().verify(ping(NOW - 31_000), expect_)).toMatchObject({
      ok: false,
      reason: 'stale_timestamp',
    });
    expect(verifier().verify(ping(NOW + 31_000), expect_)).toMatchObject({
      ok: false,
      reason: 'stale_timestamp',
    });
    expect(verifier().verify(ping(NOW - 29_000), expect_)).toMatchObject({ ok: true });
  });

  it('rejects a repeated nonce as replayed_nonce', () => {
    const v = verifier();
    const m = ping();
    expect(v.verify(m, expect_).ok).toBe(true);
    expect(v.verify(structuredClone(m), expect_)).toMatchObject({ ok: false, reason: 'replayed_nonce' });
  });

  it('does not let a forged message burn a nonce', () => {
    const v = verifier();
    const m = ping();
    expect(v.verify({ ...m, sig: ping().sig }, expect_)).toMatchObject({
      ok: false,
      reason: 'bad_signature',
    });
    expect(v.verify(m, expect_).ok).toBe(true);
  });

  it.each([
    ['not JSON', '{"v":1', 'not valid JSON'],
    ['an array', '[]', 'not a JSON object'],
    ['wrong version', JSON.stringify({ ...ping(), v: 2 }), 'v must be 1'],
    ['a bad nonce', JSON.stringify({ ...ping(), nonce: 'short' }), 'nonce'],
    ['a local-time ts', JSON.stringify({ ...ping(), ts: '2026-11-22 21:44:37' }), 'ts'],
    ['a payload array', JSON.stringify({ ...ping(), payload: [] }), 'payload'],
    ['a short sig', JSON.stringify({ ...ping(), sig: 'AAAA' }), 'sig'],
  ])('rejects %s as malformed, saying which field', (_name, text, detail) => {
    const result = verifier().verifyText(text, expect_);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toBe('malformed');
      expect(result.detail).toContain(detail);
    }
  });

  it('gives a distinct reason for each failure', () => {
    const v = verifier();
    const good = ping();
    v.verify(good, expect_);
    const reasons = [
      v.verify({ ...ping(), payload: { x: 1 } }, expect_),
      v.verify(ping(), { ...expect_, from: 'agent-7' }),
      v.verify(ping(NOW - 60_000), expect_),
      v.verify(good, expect_),
    ].map((r) => (r.ok ? 'ok' : r.reason));
    expect(new Set(reasons).size).toBe(4);
    expect(reasons).toEqual(['bad_signature', 'wrong_sender', 'stale_timestamp', 'replayed_nonce']);
  });
});

describe('ReplayWindow', () => {
  it('stays bounded and never re-opens a replay when it evicts', () => {
    const w = new ReplayWindow(30_000, 3);
    expect(w.check('a', 'n1', NOW - 3, NOW)).toBe('ok');
    expect(w.check('a', 'n2', NOW - 2, NOW)).toBe('ok');
    expect(w.check('a', 'n3', NOW - 1, NOW)).toBe('ok');
    expect(w.check('a', 'n4', NOW, NOW)).toBe('ok');
    expect(w.size).toBe(3);
    // n1 was evicted: replaying it must still fail, now by the low-water mark.
    expect(w.check('a', 'n1', NOW - 3, NOW)).toBe('outside_window');
    expect(w.check('a', 'n4', NOW, NOW)).toBe('replayed');
  });

  it('forgets nonces once their timestamps leave the window', () => {
    const w = new ReplayWindow(1_000, 100);
    w.check('a', 'n1', NOW, NOW);
    expect(w.check('a', 'n2', NOW + 5_000, NOW + 5_000)).toBe('ok');
    expect(w.size).toBe(1);
  });

  it('keeps senders apart', () => {
    const w = new ReplayWindow(30_000, 10);
    expect(w.check('a', 'n', NOW, NOW)).toBe('ok');
    expect(w.check('b', 'n', NOW, NOW)).toBe('ok');
  });
});
