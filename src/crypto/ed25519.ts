// Ed25519 for ifmesh. The hot path (sign, verify) is node:crypto with cached KeyObjects: measured
// here at ~10,800 verifies/s against ~860/s for @noble/ed25519 (field notes), and the signaling
// server and agents verify every frame. Keys are generated and public keys derived with node:crypto
// too: importing @noble/ed25519 and its first derivation, which builds tables in JavaScript, cost
// ~90 ms of every agent's start. @noble/ed25519 is the independent second implementation that the tests and
// `ifmesh selftest` check node:crypto against (./ed25519-noble.ts, loaded only there).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const B64URL = /^[A-Za-z0-9_-]*$/;

export class KeyFormatError extends Error {}

export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Strict base64url: only the URL-safe alphabet, no padding, and the exact decoded length. */
export function fromBase64url(text: string, expectedBytes?: number, what = 'value'): Uint8Array {
  if (typeof text !== 'string' || !B64URL.test(text)) {
    throw new KeyFormatError(`${what} is not base64url (A-Z a-z 0-9 - _, no padding)`);
  }
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  if (expectedBytes !== undefined && bytes.length !== expectedBytes) {
    throw new KeyFormatError(`${what} must be ${expectedBytes} bytes, got ${bytes.length}`);
  }
  if (Buffer.from(bytes).toString('base64url') !== text) {
    throw new KeyFormatError(`${what} is not canonical base64url`);
  }
  return bytes;
}

export interface KeyPair {
  /** 32-byte private seed. */
  seed: Uint8Array;
  /** 32-byte public key. */
  publicKey: Uint8Array;
}

export function generateKeyPair(): KeyPair {
  const seed = new Uint8Array(randomBytes(32));
  return { seed, publicKey: publicKeyFromSeed(seed) };
}

export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyObject(seed)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
}

/** A short, stable identifier of a public key: the first 16 hex digits of its SHA-256. */
export function keyId(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, 16);
}

// Importing a raw key costs about half a verification; agents verify many messages per key.
const PUBLIC_CACHE_MAX = 10_000;
const publicCache = new Map<string, KeyObject>();

export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== 32)
    throw new KeyFormatError(`public key must be 32 bytes, got ${publicKey.length}`);
  const cacheKey = toBase64url(publicKey);
  const hit = publicCache.get(cacheKey);
  if (hit) return hit;
  const obj = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  if (publicCache.size >= PUBLIC_CACHE_MAX) {
    const oldest = publicCache.keys().next().value;
    if (oldest !== undefined) publicCache.delete(oldest);
  }
  publicCache.set(cacheKey, obj);
  return obj;
}

export function privateKeyObject(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new KeyFormatError(`private key seed must be 32 bytes, got ${seed.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** A signer holding its KeyObject, so that signing does not re-import the key each time. */
export interface Signer {
  readonly publicKey: Uint8Array;
  sign(data: Uint8Array): Uint8Array;
}

export function createSigner(seed: Uint8Array): Signer {
  const key = privateKeyObject(seed);
  const publicKey = publicKeyFromSeed(seed);
  return {
    publicKey,
    sign: (data) => new Uint8Array(sign(null, data, key)),
  };
}

export function verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  return verify(null, data, publicKeyObject(publicKey), signature);
}
