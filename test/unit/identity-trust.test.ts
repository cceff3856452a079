// Issue 21 without sockets: the replay window per sender, the peer-key pin with its rotation chain,
// and the register frame's bounded metadata and rotation proof.
import { describe, expect, it } from 'vitest';
import { acceptPeerKey } from '../../src/agent/pins.js';
import { createSigner, generateKeyPair, type KeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import { ReplayWindow } from '../../src/crypto/replay.js';
import { type FrameError, parseClientFrame, rotationStatement } from '../../src/protocol/signaling.js';

const NOW = Date.parse('2026-11-22T21:44:37.123Z');
const b64 = (k: KeyPair) => toBase64url(k.publicKey);
const step = (id: string, from: KeyPair, to: KeyPair) => ({
  previous_key: b64(from),
  public_key: b64(to),
  signature: toBase64url(createSigner(from.seed).sign(rotationStatement(id, b64(to)))),
});

describe('ReplayWindow per sender', () => {
  it("keeps one sender's low-water mark to itself", () => {
    const w = new ReplayWindow(30_000, 2);
    expect(w.check('b', 'ahead', NOW + 20_000, NOW)).toBe('ok');
    expect(w.check('b', 'n1', NOW, NOW)).toBe('ok');
    // Full: "ahead" is evicted and b's mark becomes NOW + 20 s, so b's own messages are refused...
    expect(w.check('b', 'n2', NOW, NOW)).toBe('outside_window');
    expect(w.check('b', 'n3', NOW + 1, NOW)).toBe('outside_window');
    // ... and nobody else's.
    expect(w.check('c', 'n1', NOW, NOW)).toBe('ok');
    expect(w.check('c', 'n1', NOW, NOW)).toBe('replayed');
  });
});

describe('acceptPeerKey', () => {
  const [k0, k1, k2, evil] = [generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair()];
  it('pins the first key, keeps it, and follows a chain of rotations signed from it', () => {
    expect(acceptPeerKey('p', undefined, b64(k0), undefined)).toMatchObject({ ok: true, rotated: false });
    expect(acceptPeerKey('p', k0.publicKey, b64(k0), undefined)).toMatchObject({ ok: true, rotated: false });
    const chain = [step('p', k0, k1), step('p', k1, k2)];
    expect(acceptPeerKey('p', k0.publicKey, b64(k2), chain)).toMatchObject({ ok: true, rotated: true });
    expect(acceptPeerKey('p', k1.publicKey, b64(k2), chain)).toMatchObject({ ok: true, rotated: true });
  });
  it('refuses a changed key without a proof, with a proof for another id, or signed by another key', () => {
    const refused = { ok: false, reason: 'unproven_key_change' };
    expect(acceptPeerKey('p', k0.publicKey, b64(evil), undefined)).toMatchObject(refused);
    expect(acceptPeerKey('p', k0.publicKey, b64(evil), [step('q', k0, evil)])).toMatchObject(refused);
    expect(
      acceptPeerKey('p', k0.publicKey, b64(evil), [{ ...step('p', evil, evil), previous_key: b64(k0) }]),
    ).toMatchObject(refused);
    expect(acceptPeerKey('p', k0.publicKey, 'junk', undefined)).toMatchObject({
      ok: false,
      reason: 'malformed_key',
    });
  });
});

describe('register frame', () => {
  const base = { type: 'register', agent_id: 'a-1', public_key: 'A'.repeat(43), signature: 'B'.repeat(86) };
  it('keeps a rotation proof, naming the key it is for, and flat metadata', () => {
    const f = parseClientFrame(
      JSON.stringify({
        ...base,
        metadata: { mesh: 'm', n: 1, ok: true, x: null },
        rotation: { previous_key: 'C'.repeat(43), signature: 'D'.repeat(86) },
      }),
    );
    expect(f).toMatchObject({
      metadata: { mesh: 'm', n: 1, ok: true, x: null },
      rotation: { previous_key: 'C'.repeat(43), public_key: 'A'.repeat(43), signature: 'D'.repeat(86) },
    });
  });
  it('refuses nested metadata as invalid_metadata, and a malformed rotation as invalid_frame', () => {
    const code = (frame: object) => {
      try {
        parseClientFrame(JSON.stringify(frame));
      } catch (err) {
        return (err as FrameError).code;
      }
      return 'accepted';
    };
    expect(code({ ...base, metadata: { a: { b: 1 } } })).toBe('invalid_metadata');
    expect(code({ ...base, metadata: [] })).toBe('invalid_metadata');
    expect(code({ ...base, rotation: { previous_key: 'not base64!' } })).toBe('invalid_frame');
    expect(code({ ...base, rotation: 'x' })).toBe('invalid_frame');
  });
});
