// Trust on first use for peer keys. Signaling tells an agent its peers' keys; an agent believes the
// first key it hears for an id and, after that, only a key the pinned one handed over to: a chain of
// rotation proofs (oldest first), each signed by the key before it over
// `ifmesh-rotate:<id>:<next key>`. So neither a squatter that got past signaling, nor a forged
// announcement (a compromised cluster store), nor a rebind by an operator makes a peer trust
// another key for an id it already knows; the last needs the peers restarted.
import { fromBase64url, keyId, toBase64url, verifySignature } from '../crypto/ed25519.js';
import { rotationStatement } from '../protocol/signaling.js';

export type PinDecision =
  | { ok: true; key: Uint8Array; rotated: boolean }
  | { ok: false; reason: 'malformed_key' | 'unproven_key_change'; announcedKeyId: string | null };

const MAX_CHAIN = 64;

function decode(text: unknown, bytes: number): Uint8Array | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    return fromBase64url(text, bytes, 'key');
  } catch {
    return undefined;
  }
}

/** Whether `announced` may be used for `peerId` given the pinned key and the announced rotations. */
export function acceptPeerKey(
  peerId: string,
  pinned: Uint8Array | undefined,
  announced: unknown,
  rotations: unknown,
): PinDecision {
  const key = decode(announced, 32);
  if (!key) return { ok: false, reason: 'malformed_key', announcedKeyId: null };
  if (!pinned) return { ok: true, key, rotated: false };
  const target = toBase64url(key);
  let current = toBase64url(pinned);
  if (current === target) return { ok: true, key: pinned, rotated: false };
  const chain = Array.isArray(rotations) ? rotations.slice(-MAX_CHAIN) : [];
  for (const step of chain) {
    if (!step || typeof step !== 'object') continue;
    const p = step as Record<string, unknown>;
    if (p.previous_key !== current || typeof p.public_key !== 'string') continue;
    const prev = decode(current, 32);
    const sig = decode(p.signature, 64);
    if (!prev || !sig || !decode(p.public_key, 32)) break;
    if (!verifySignature(prev, rotationStatement(peerId, p.public_key), sig)) break;
    current = p.public_key;
    if (current === target) return { ok: true, key, rotated: true };
  }
  return { ok: false, reason: 'unproven_key_change', announcedKeyId: keyId(key) };
}
