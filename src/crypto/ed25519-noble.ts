// @noble/ed25519: the independent implementation that `ifmesh selftest` and the tests check
// node:crypto's keys and signatures against. Cross-checks only (slow: ~860 verifies/s here, and its
// first call builds tables in JavaScript), so nothing on a service's path imports this module.
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';

ed.hashes.sha512 = sha512;

export const noble = {
  publicKey: (seed: Uint8Array): Uint8Array => ed.getPublicKey(seed),
  sign: (data: Uint8Array, seed: Uint8Array): Uint8Array => ed.sign(data, seed),
  verify: (signature: Uint8Array, data: Uint8Array, publicKey: Uint8Array): boolean => {
    try {
      return ed.verify(signature, data, publicKey);
    } catch {
      return false;
    }
  },
};
