import { createSigner, generateKeyPair, noble, verifySignature } from '../../src/crypto/ed25519.js';
import { buildMessage, MessageVerifier, signingBytes, signMessage } from '../../src/crypto/ifmessage.js';
import { opsPerSecond, type Row } from './lib.js';

/** IFMessage sign/verify (~300 bytes): the full ifmesh path against raw @noble/ed25519 on the same bytes. */
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

  const nobleSign = opsPerSecond(() => noble.sign(bytes, seed));
  const nobleVerify = opsPerSecond(() => noble.verify(sig, bytes, publicKey));
  const nodeSign = opsPerSecond(() => signer.sign(bytes));
  const nodeVerify = opsPerSecond(() => verifySignature(publicKey, bytes, sig));
  // The real receive path: parse, shape checks, JCS, signature, replay cache. Every call must pass,
  // so each gets a fresh nonce-free verifier view: a new verifier per 10,000 keeps the cache realistic.
  let verifier = new MessageVerifier({ now: () => Date.now() });
  let n = 0;
  const fresh = Array.from({ length: 2000 }, () =>
    JSON.stringify(
      signMessage(
        buildMessage({ from: 'agent-1', to: 'agent-2', type: 'ping', payload }, Date.now()),
        signer,
      ),
    ),
  );
  const fullVerify = opsPerSecond(() => {
    if (n % fresh.length === 0) verifier = new MessageVerifier({ now: () => Date.now() });
    const r = verifier.verifyText(fresh[n % fresh.length]!, { publicKey, from: 'agent-1' });
    n++;
    if (!r.ok) throw new Error(`verify failed: ${r.reason}`);
  });
  const fullSign = opsPerSecond(() => {
    signMessage(buildMessage({ from: 'agent-1', to: 'agent-2', type: 'ping', payload }, Date.now()), signer);
  });
  const fmt = (x: number) => `${Math.round(x).toLocaleString('en-US')}/s`;
  return [
    {
      measure: `Ed25519 sign, ${bytes.length}-byte IFMessage`,
      baseline: `noble ${fmt(nobleSign)}`,
      ifmesh: `node:crypto ${fmt(nodeSign)}`,
      ratio: `${(nodeSign / nobleSign).toFixed(1)}×`,
      target: '—',
    },
    {
      measure: `Ed25519 verify, ${bytes.length}-byte IFMessage`,
      baseline: `noble ${fmt(nobleVerify)}`,
      ifmesh: `node:crypto ${fmt(nodeVerify)}`,
      ratio: `${(nodeVerify / nobleVerify).toFixed(1)}×`,
      target: '—',
    },
    {
      measure: `IFMessage build+JCS+sign (${text.length} B on the wire)`,
      baseline: `noble sign ${fmt(nobleSign)}`,
      ifmesh: fmt(fullSign),
      ratio: `${(fullSign / nobleSign).toFixed(1)}×`,
      target: '—',
    },
    {
      measure: 'IFMessage parse+checks+JCS+verify+replay',
      baseline: `noble verify ${fmt(nobleVerify)}`,
      ifmesh: fmt(fullVerify),
      ratio: `${(fullVerify / nobleVerify).toFixed(1)}×`,
      target: '≥ 5,000/s',
    },
  ];
}
