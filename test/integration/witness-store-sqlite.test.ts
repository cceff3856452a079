import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyInclusion } from '../../src/crypto/merkle.js';
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
