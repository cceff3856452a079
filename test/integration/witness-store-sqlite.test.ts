import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryTree, rootHash, verifyInclusion } from '../../src/crypto/merkle.js';
import { parseQuery } from '../../src/services/witness/query.js';
import { openSqliteStore } from '../../src/services/witness/sqlite-store.js';
import type { AppendItem } from '../../src/services/witness/store.js';
import { tempDir } from '../helpers/cli.js';
import { describeStoreContract } from './witness-store-contract.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());
let n = 0;

describeStoreContract('sqlite', async () => openSqliteStore(path.join(dir, `store-${n++}.db`)));

describe('SQLite store: writes on the writer thread', () => {
  const ev = (event: string, i: number): AppendItem => ({
    doc: { event, i, timestamp: '2026-11-22T12:00:00.000Z' },
    tsMs: Date.parse('2026-11-22T12:00:00Z'),
    idempotencyKey: undefined,
  });

  it('keeps the same tree head and proofs across a restart', async () => {
    const file = path.join(dir, `store-${n++}.db`);
    const first = openSqliteStore(file);
    for (let i = 0; i < 13; i++) await first.append([ev('m', i)]);
    const head = await first.treeHead();
    await first.close();
    const again = openSqliteStore(file);
    try {
      expect(await again.treeHead()).toEqual(head);
      const [leaf] = await again.leafHashes(5, 6);
      expect(verifyInclusion(leaf!, 5, 13, await again.inclusionProof(5, 13), head.root)).toBe(true);
      expect((await again.append([ev('m', 13)])).status === 'ok' && (await again.treeHead()).size).toBe(14);
    } finally {
      await again.close();
    }
  });

  it('goes on with a log written before levels 1-3 were left unstored, with the same tree', async () => {
    const file = path.join(dir, `store-${n++}.db`);
    const first = openSqliteStore(file);
    for (let i = 0; i < 11; i++) await first.append([ev('m', i)]);
    await first.close();
    // Earlier versions stored every level: add those rows as they wrote them.
    const mem = new MemoryTree();
    const db = new Database(file);
    const leaves = db
      .prepare('SELECT hash FROM nodes WHERE level = 0 ORDER BY idx')
      .pluck()
      .all() as Buffer[];
    for (const leaf of leaves) mem.append(leaf);
    const insert = db.prepare('INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)');
    for (let level = 1; level < 4; level++)
      for (let idx = 0; (idx + 1) * 2 ** level <= 11; idx++) insert.run(level, idx, mem.node(level, idx));
    db.close();
    const again = openSqliteStore(file);
    try {
      for (let i = 11; i < 20; i++) await again.append([ev('m', i)]);
      for (const leaf of await again.leafHashes(11, 20)) mem.append(leaf);
      const head = await again.treeHead();
      expect(head).toEqual({ size: 20, root: rootHash(mem, 20) });
      expect(await again.rootAt(11)).toEqual(rootHash(mem, 11));
      expect(verifyInclusion(mem.node(0, 9), 9, 20, await again.inclusionProof(9, 20), head.root)).toBe(true);
    } finally {
      await again.close();
    }
  });

  it('rejects the appends of a group that fails to commit, stores none of it, and goes on', async () => {
    const file = path.join(dir, `store-${n++}.db`);
    const s = openSqliteStore(file);
    try {
      await s.append([ev('ok', 0)]);
      // A database that refuses one event, as a full disk or a corrupt page would refuse a commit.
      const other = new Database(file);
      other.exec(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.event = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END",
      );
      other.close();
      await expect(s.append([ev('ok', 1), ev('boom', 2)])).rejects.toThrow(/refused/);
      expect((await s.treeHead()).size).toBe(1);
      const r = await s.append([ev('ok', 3)]);
      expect(r).toEqual({ status: 'ok', ids: [2], created: 1 });
      const head = await s.treeHead();
      expect(head.size).toBe(2);
      const [leaf] = await s.leafHashes(1, 2);
      expect(verifyInclusion(leaf!, 1, 2, await s.inclusionProof(1, 2), head.root)).toBe(true);
      const bodies = (await s.query(parseQuery({}, Date.now()), performance.now() + 5_000)).bodies;
      expect(bodies.map((b) => JSON.parse(b).i)).toEqual([0, 3]);
    } finally {
      await s.close();
    }
  });
});
