import path from 'node:path';
import { createSigner, generateKeyPair, publicKeyFromSeed } from '../../src/crypto/ed25519.js';
import {
  createWitnessServer,
  type WitnessServer,
  type WitnessServerDeps,
} from '../../src/services/witness/server.js';
import { openSqliteStore } from '../../src/services/witness/sqlite-store.js';
import { tempDir } from './cli.js';

export const API_KEY = 'test-witness-key';

export interface RunningWitness {
  server: WitnessServer;
  url: string;
  dir: string;
  dbPath: string;
  publicKey: Uint8Array;
  stop: () => Promise<void>;
}

/** A real witness on an ephemeral loopback port with a fresh SQLite file. */
export async function startWitness(
  overrides: Partial<WitnessServerDeps> = {},
  opts: { seed?: Uint8Array; dbPath?: string; keepFiles?: boolean; port?: number } = {},
): Promise<RunningWitness> {
  const { dir, cleanup } = tempDir();
  const dbPath = opts.dbPath ?? path.join(dir, 'witness.db');
  const pair = generateKeyPair();
  const seed = opts.seed ?? pair.seed;
  const publicKey = opts.seed ? publicKeyFromSeed(opts.seed) : pair.publicKey;
  const server = createWitnessServer({
    store: openSqliteStore(dbPath),
    signer: createSigner(seed),
    apiKey: API_KEY,
    checkpointIntervalMs: 60_000,
    ...overrides,
  });
  await server.listen(opts.port ?? 0);
  return {
    server,
    url: server.url,
    dir,
    dbPath,
    publicKey,
    stop: async () => {
      await server.close();
      if (!opts.keepFiles) cleanup();
    },
  };
}

export async function post(
  url: string,
  body: unknown,
  token: string | null = API_KEY,
): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}
