import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createSigner,
  fromBase64url,
  generateKeyPair,
  KeyFormatError,
  publicKeyFromSeed,
  toBase64url,
  verifySignature,
} from '../../src/crypto/ed25519.js';
import { noble } from '../../src/crypto/ed25519-noble.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

describe('Ed25519', () => {
  it('matches RFC 8032 §7.1 test 1', () => {
    const seed = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
    expect(Buffer.from(publicKeyFromSeed(seed)).toString('hex')).toBe(
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
    const sig = createSigner(seed).sign(new Uint8Array());
    expect(Buffer.from(sig).toString('hex')).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('interoperates with @noble/ed25519 both ways', () => {
    const { seed, publicKey } = generateKeyPair();
    expect(Buffer.from(noble.publicKey(seed)).equals(Buffer.from(publicKey))).toBe(true);
    const data = new TextEncoder().encode('ifmesh/IFMessage/v1\n{"a":1}');
    const ours = createSigner(seed).sign(data);
    const theirs = noble.sign(data, seed);
    expect(Buffer.from(ours).equals(Buffer.from(theirs))).toBe(true);
    expect(noble.verify(ours, data, publicKey)).toBe(true);
    expect(verifySignature(publicKey, data, theirs)).toBe(true);
  });

  it("interoperates with node:crypto's own Ed25519 keys both ways", () => {
    const pair = generateKeyPairSync('ed25519');
    const rawPublic = new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32));
    const rawSeed = new Uint8Array(pair.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32));
    const data = new TextEncoder().encode('interop');
    // node signs, we verify
    expect(verifySignature(rawPublic, data, new Uint8Array(nodeSign(null, data, pair.privateKey)))).toBe(
      true,
    );
    // we sign, node verifies
    expect(nodeVerify(null, data, pair.publicKey, createSigner(rawSeed).sign(data))).toBe(true);
  });

  it('rejects a signature over other bytes, under another key, or of the wrong length', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const data = new TextEncoder().encode('x');
    const sig = createSigner(a.seed).sign(data);
    expect(verifySignature(a.publicKey, new TextEncoder().encode('y'), sig)).toBe(false);
    expect(verifySignature(b.publicKey, data, sig)).toBe(false);
    expect(verifySignature(a.publicKey, data, sig.subarray(0, 63))).toBe(false);
  });

  it('decodes base64url strictly', () => {
    const key = generateKeyPair().publicKey;
    expect(fromBase64url(toBase64url(key), 32)).toEqual(key);
    expect(() => fromBase64url(`${toBase64url(key)}=`, 32)).toThrow(KeyFormatError);
    expect(() => fromBase64url(toBase64url(key).replace(/^./, '+'), 32)).toThrow(/not base64url/);
    expect(() => fromBase64url(toBase64url(key).slice(0, 40), 32)).toThrow(/32 bytes/);
  });
});
