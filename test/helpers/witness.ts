import path from 'node:path';
import { onTestFinished } from 'vitest';
import { createSigner, generateKeyPair, publicKeyFromSeed } from '../../src/crypto/ed25519.js';
import {
  createWitnessServer,
  type WitnessServer,
  type WitnessServerDeps,
} from '../../src/services/witness/server.js';
import { openSqliteStore, type SqliteStoreOptions } from '../../src/services/witness/sqlite-store.js';
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
  opts: {
    seed?: Uint8Array;
    dbPath?: string;
    keepFiles?: boolean;
    store?: SqliteStoreOptions;
    port?: number;
  } = {},
): Promise<RunningWitness> {
  // With a caller's dbPath the caller owns the directory; otherwise the witness gets its own, kept
  // past stop() for `keepFiles` (the test reads the database afterwards) until the test ends.
  const own = opts.dbPath ? undefined : tempDir();
  if (own && opts.keepFiles) onTestFinished(() => own.cleanup());
  const dir = own?.dir ?? path.dirname(opts.dbPath!);
  const dbPath = opts.dbPath ?? path.join(dir, 'witness.db');
  const pair = generateKeyPair();
  const seed = opts.seed ?? pair.seed;
  const publicKey = opts.seed ? publicKeyFromSeed(opts.seed) : pair.publicKey;
  const server = createWitnessServer({
    store: openSqliteStore(dbPath, opts.store),
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
      if (own && !opts.keepFiles) own.cleanup();
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
