import { loadConfig } from '../config/load.js';
import { createSigner, generateKeyPair, verifySignature } from '../crypto/ed25519.js';
import { noble } from '../crypto/ed25519-noble.js';
import { buildMessage, MessageVerifier, signingBytes, signMessage } from '../crypto/ifmessage.js';
import { canonicalize } from '../crypto/jcs.js';
import { IfmeshError } from '../errors.js';
import { fixturePath } from '../paths.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SelftestReport {
  ok: boolean;
  checks: CheckResult[];
}

export interface SelftestOptions {
  cwd: string;
  env: Record<string, string | undefined>;
  now: () => number;
  /** Called as each check finishes, for progress output. */
  onCheck?: (check: CheckResult) => void;
}

type Check = { name: string; run: () => Promise<string> | string };

/** Proves the pieces every other command relies on, using only what ships in the package. */
export async function runSelftest(opts: SelftestOptions): Promise<SelftestReport> {
  const checks: Check[] = [
    {
      name: 'bundled development config validates',
      run: async () => {
        const loaded = await loadConfig({
          cwd: opts.cwd,
          env: {},
          file: fixturePath('config', 'development.env'),
        });
        return `${loaded.config.stunServers.length} STUN, ${loaded.config.turnServers.length} TURN, policy ${loaded.config.iceTransportPolicy}`;
      },
    },
    {
      name: 'bundled production config passes the production rules',
      run: async () => {
        const loaded = await loadConfig({
          cwd: opts.cwd,
          env: {},
          file: fixturePath('config', 'production.env'),
        });
        if (!loaded.config.productionMode)
          throw new Error('PRODUCTION_MODE is not true in the production fixture');
        return `TLS files readable, ${loaded.config.turnServers.length} TURN servers with credentials`;
      },
    },
    {
      name: 'RFC 8785 canonical JSON',
      run: () => {
        const input = JSON.parse(
          '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
        );
        const expected =
          '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}';
        const got = canonicalize(input);
        if (got !== expected) throw new Error(`got ${got}`);
        return 'matches the RFC 8785 §3.2.2 example';
      },
    },
    {
      name: 'Ed25519: node:crypto and @noble/ed25519 agree',
      run: () => {
        const { seed, publicKey } = generateKeyPair();
        if (Buffer.compare(Buffer.from(publicKey), Buffer.from(noble.publicKey(seed))) !== 0)
          throw new Error('public keys derived from one seed differ');
        const data = new TextEncoder().encode('ifmesh selftest');
        const nodeSig = createSigner(seed).sign(data);
        const nobleSig = noble.sign(data, seed);
        if (Buffer.compare(Buffer.from(nodeSig), Buffer.from(nobleSig)) !== 0)
          throw new Error('signatures differ');
        if (!noble.verify(nodeSig, data, publicKey)) throw new Error('noble rejects a node:crypto signature');
        if (!verifySignature(publicKey, data, nobleSig))
          throw new Error('node:crypto rejects a noble signature');
        return 'identical public keys and signatures, each verifies the other';
      },
    },
    {
      name: 'IFMessage sign, verify and rejection',
      run: () => {
        const { seed, publicKey } = generateKeyPair();
        const signer = createSigner(seed);
        const now = opts.now();
        const verifier = new MessageVerifier({ now: () => now });
        const msg = signMessage(
          buildMessage({ from: 'selftest-a', to: 'selftest-b', type: 'ping' }, now),
          signer,
        );
        const expect = { publicKey, from: 'selftest-a' };
        const first = verifier.verify(msg, expect);
        if (!first.ok) throw new Error(`a valid message was rejected: ${first.reason}`);
        const replay = verifier.verify(msg, expect);
        if (replay.ok || replay.reason !== 'replayed_nonce')
          throw new Error('a replayed message was accepted');
        const tampered = verifier.verify({ ...msg, payload: { x: 1 } }, expect);
        if (tampered.ok || tampered.reason !== 'bad_signature')
          throw new Error('a tampered message was accepted');
        const stale = signMessage(
          buildMessage({ from: 'selftest-a', to: 'selftest-b', type: 'ping' }, now - 120_000),
          signer,
        );
        const old = verifier.verify(stale, expect);
        if (old.ok || old.reason !== 'stale_timestamp') throw new Error('a stale message was accepted');
        return `${signingBytes(msg).length}-byte signed form; replay, tamper and stale rejected`;
      },
    },
  ];

  const results: CheckResult[] = [];
  for (const check of checks) {
    let result: CheckResult;
    try {
      result = { name: check.name, ok: true, detail: await check.run() };
    } catch (err) {
      const detail = err instanceof IfmeshError ? `${err.code}: ${err.message}` : (err as Error).message;
      result = { name: check.name, ok: false, detail };
    }
    results.push(result);
    opts.onCheck?.(result);
  }
  return { ok: results.every((r) => r.ok), checks: results };
}
