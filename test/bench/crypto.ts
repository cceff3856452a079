import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { createSigner, generateKeyPair, verifySignature } from '../../src/crypto/ed25519.js';
import { buildMessage, MessageVerifier, signingBytes, signMessage } from '../../src/crypto/ifmessage.js';
import { compareOpsPerSecond, type Row } from './lib.js';

const fmt = (x: number) => `${Math.round(x).toLocaleString('en-US')}/s`;

/**
 * IFMessage signing and verification (~300 bytes) against the shortest raw path doing the same
 * work: node:crypto signing or verifying the same bytes with a key object built once. The ratio is
 * then ifmesh's own overhead (key handling, message building, JCS, checks, the replay cache).
 */
export function benchCrypto(): Row[] {
  const { seed, publicKey } = generateKeyPair();
  const signer = createSigner(seed);
  const payload = { task: 'sync', seq: 1, note: 'x'.repeat(40) };
  const msg = signMessage(
    buildMessage({ from: 'agent-1', to: 'agent-2', type: 'ping', payload }, Date.now()),
    signer,
  );
  const text = JSON.stringify(msg);
  const bytes = signingBytes(msg);
  const sig = Buffer.from(msg.sig, 'base64url');
  const rawPrivate = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const rawPublic = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), publicKey]),
    format: 'der',
    type: 'spki',
  });
  if (!verify(null, bytes, rawPublic, sign(null, bytes, rawPrivate))) throw new Error('raw keys disagree');
  const rawSign = () => sign(null, bytes, rawPrivate);
  const rawVerify = () => {
    if (!verify(null, bytes, rawPublic, sig)) throw new Error('raw verify failed');
  };

  const keySign = compareOpsPerSecond(rawSign, () => signer.sign(bytes));
  const keyVerify = compareOpsPerSecond(rawVerify, () => {
    if (!verifySignature(publicKey, bytes, sig)) throw new Error('verify failed');
  });
  const fullSign = compareOpsPerSecond(rawSign, () => {
    signMessage(buildMessage({ from: 'agent-1', to: 'agent-2', type: 'ping', payload }, Date.now()), signer);
  });
  // The real receive path: parse, shape checks, JCS, signature, replay cache. Every call must pass,
  // so each message is fresh, and a new verifier per pass over them keeps the cache realistic.
  const fresh = Array.from({ length: 2000 }, () =>
    JSON.stringify(
      signMessage(
        buildMessage({ from: 'agent-1', to: 'agent-2', type: 'ping', payload }, Date.now()),
        signer,
      ),
    ),
  );
  let verifier = new MessageVerifier({ now: () => Date.now() });
  let n = 0;
  const fullVerify = compareOpsPerSecond(rawVerify, () => {
    if (n % fresh.length === 0) verifier = new MessageVerifier({ now: () => Date.now() });
    const r = verifier.verifyText(fresh[n % fresh.length]!, { publicKey, from: 'agent-1' });
    n++;
    if (!r.ok) throw new Error(`verify failed: ${r.reason}`);
  });

  const row = (
    measure: string,
    what: string,
    m: { baseline: number; ours: number },
    atLeast: number,
  ): Row => {
    const ratio = m.ours / m.baseline;
    return {
      measure,
      baseline: `raw node:crypto ${what} ${fmt(m.baseline)}`,
      ifmesh: fmt(m.ours),
      ratio: `${ratio.toFixed(2)}×`,
      target: `≥ ${atLeast}×`,
      met: ratio >= atLeast,
    };
  };
  return [
    row(`Ed25519 sign, ${bytes.length}-byte IFMessage (ifmesh signer)`, 'sign', keySign, 0.8),
    row(
      `Ed25519 verify, ${bytes.length}-byte IFMessage (raw public key, cached key object)`,
      'verify',
      keyVerify,
      0.8,
    ),
    row(`IFMessage build+JCS+sign (${text.length} B on the wire)`, 'sign', fullSign, 0.5),
    row('IFMessage parse+checks+JCS+verify+replay', 'verify', fullVerify, 0.5),
  ];
}
