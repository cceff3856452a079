// The store contract suite, unchanged, against a real PostgreSQL started from initdb for this file:
// once as the witness runs it (regex queries on the scan thread, pg-scan.ts) and once with an
// injected clock (regex queries in-process, in slices). Then what only the scan thread has.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/crypto/jcs.js';
import { leafHash, MemoryTree, rootHash } from '../../src/crypto/merkle.js';
import { openPgStore, type PgWitnessStore } from '../../src/services/witness/pg-store.js';
import { encodeCursor, parseQuery } from '../../src/services/witness/query.js';
import type { AppendItem } from '../../src/services/witness/store.js';
import { postgresForThisFile } from '../helpers/postgres.js';
import { describeStoreContract } from './witness-store-contract.js';

const server = postgresForThisFile();

describeStoreContract('postgres', async () => openPgStore(await server().createDatabase()));
describeStoreContract('postgres, regex queries in-process', async () =>
  openPgStore(await server().createDatabase(), { monotonicNow: () => performance.now() }),
);

const NOW = Date.parse('2026-12-06T12:00:00Z');

function item(i: number): AppendItem {
  const doc = {
    timestamp: new Date(NOW + i).toISOString(),
    event: 'scan_page',
    metadata: { n: `row-${i % 7}-${i}` },
  };
  return {
    doc,
    tsMs: NOW + i,
    idempotencyKey: undefined,
    contentHash: createHash('sha256').update(canonicalize(doc)).digest('base64url'),
  };
}

/** Every page of a query, following cursors, as the ids of the events returned. */
async function allPages(
  store: PgWitnessStore,
  query: Record<string, unknown>,
  limit: number,
): Promise<number[]> {
  const ids: number[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const q = parseQuery({ query, limit, time_range: { from: NOW - 1, to: NOW + 10_000 }, cursor }, NOW);
    const r = await store.query(q, performance.now() + 30_000);
    ids.push(...r.bodies.map((b) => JSON.parse(b).id as number));
    if (!r.next) return ids;
    cursor = encodeCursor(r.next);
  }
  throw new Error('more than 100 pages');
}

describe('regex queries on the PostgreSQL scan thread', () => {
  const stores: PgWitnessStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it('page through many 500-row candidate pages with a cursor exactly as the in-process path', async () => {
    const url = await server().createDatabase();
    const threaded = await openPgStore(url);
    const inProcess = await openPgStore(url, { monotonicNow: () => performance.now() });
    stores.push(threaded, inProcess);
    await threaded.append(Array.from({ length: 1_800 }, (_, i) => item(i)));
    const query = { 'metadata.n': { regex: '^row-[35]-' } };
    const expected = Array.from({ length: 1_800 }, (_, i) => i)
      .filter((i) => i % 7 === 3 || i % 7 === 5)
      .map((i) => i + 1);
    expect(await allPages(inProcess, query, 120)).toEqual(expected);
    expect(await allPages(threaded, query, 120)).toEqual(expected);
  });

  it('closes at once when opened and closed before any query (as a tool reading the tree head does)', async () => {
    const store = await openPgStore(await server().createDatabase());
    await store.close();
  });

  it('answers the next regex query after PostgreSQL dropped the scan connection', async () => {
    const url = await server().createDatabase();
    const store = await openPgStore(url);
    stores.push(store);
    await store.append(Array.from({ length: 50 }, (_, i) => item(i)));
    const query = { 'metadata.n': { regex: '^row-0-' } };
    expect(await allPages(store, query, 100)).toHaveLength(8);
    // What a PostgreSQL restart or an operator's pg_terminate_backend does to the thread's connection.
    const killed = await store.writes.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
    );
    expect(killed.rowCount).toBeGreaterThan(0);
    expect(await allPages(store, query, 100)).toHaveLength(8);
  });
});

describe('several witness instances on one PostgreSQL database', () => {
  it('append concurrently into one gap-free sequence under one tree, keyed events included', async () => {
    const url = await server().createDatabase();
    const stores = [await openPgStore(url), await openPgStore(url), await openPgStore(url)];
    try {
      // Each instance appends 40 batches of 1-5 events, every fifth batch with idempotency keys
      // (the locked path), the rest on the one-statement path that assumes it appended last.
      const sent = await Promise.all(
        stores.map(async (store, s) => {
          let n = 0;
          for (let b = 0; b < 40; b++) {
            const items = Array.from({ length: 1 + (b % 5) }, (_, k) => {
              const it = item(s * 100_000 + b * 10 + k);
              return b % 5 === 4 ? { ...it, idempotencyKey: `s${s}-b${b}-k${k}` } : it;
            });
            const r = await store.append(items);
            if (r.status !== 'ok') throw new Error(`append answered ${r.status}`);
            n += r.created;
          }
          return n;
        }),
      );
      const total = sent.reduce((a, b) => a + b, 0);
      const head = await stores[0]!.treeHead();
      expect(head.size).toBe(total);
      const rows = (await stores[1]!.writes.query('SELECT id, body FROM events ORDER BY id')).rows;
      expect(rows.map((r) => Number(r.id))).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      const mem = new MemoryTree();
      for (const row of rows) mem.append(leafHash(Buffer.from(row.body)));
      for (const store of stores) expect((await store.treeHead()).root).toEqual(rootHash(mem, total));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
