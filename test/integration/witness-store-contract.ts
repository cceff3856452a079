// The contract every WitnessStore must keep. A second implementation (PostgreSQL) runs this same
// suite with its own factory; nothing here may depend on SQLite.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/crypto/jcs.js';
import {
  leafHash,
  MemoryTree,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/crypto/merkle.js';
import { parseQuery } from '../../src/services/witness/query.js';
import type { AppendItem, WitnessStore } from '../../src/services/witness/store.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');

function item(doc: Record<string, unknown>, tsMs = NOW, key?: string): AppendItem {
  const full = { timestamp: new Date(tsMs).toISOString(), ...doc };
  return {
    doc: full,
    tsMs,
    idempotencyKey: key,
    contentHash: createHash('sha256').update(canonicalize(doc)).digest('base64url'),
  };
}

export function describeStoreContract(name: string, open: () => Promise<WitnessStore>): void {
  describe(`WitnessStore contract: ${name}`, () => {
    let store: WitnessStore | undefined;
    const fresh = async () => {
      store = await open();
      return store;
    };
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    const q = async (s: WitnessStore, body: unknown) =>
      (await s.query(parseQuery(body, NOW), performance.now() + 5_000)).bodies.map(
        (b) => JSON.parse(b) as Record<string, unknown>,
      );

    it('assigns ids 1, 2, 3 … in order, and stores each event canonically with its id', async () => {
      const s = await fresh();
      expect(await s.append([item({ event: 'a' }), item({ event: 'b' })])).toEqual({
        status: 'ok',
        ids: [1, 2],
        created: 2,
      });
      expect(await s.append([item({ event: 'c' })])).toEqual({ status: 'ok', ids: [3], created: 1 });
      const all = await q(s, {});
      expect(all.map((e) => [e.id, e.event])).toEqual([
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ]);
    });

    it('returns the original id for a repeated idempotency key and refuses a different event under it, atomically', async () => {
      const s = await fresh();
      const first = await s.append([item({ event: 'x', n: 1 }, NOW, 'k')]);
      expect(first).toMatchObject({ status: 'ok', ids: [1] });
      expect(await s.append([item({ event: 'x', n: 1 }, NOW, 'k'), item({ event: 'y' })])).toMatchObject({
        status: 'ok',
        ids: [1, 2],
        created: 1,
      });
      expect(await s.append([item({ event: 'z' }), item({ event: 'x', n: 2 }, NOW, 'k')])).toEqual({
        status: 'conflict',
        index: 1,
        key: 'k',
      });
      expect((await q(s, {})).map((e) => e.event)).toEqual(['x', 'y']);
      expect(
        await s.append([item({ event: 'd' }, NOW, 'dup'), item({ event: 'd' }, NOW, 'dup')]),
      ).toMatchObject({ ids: [3, 3], created: 1 });
    });

    it('matches equality, dotted paths, $ne, $in, comparisons and regex with JSON types respected', async () => {
      const s = await fresh();
      await s.append([
        item({ event: 'q', agent_id: 'agent-1', metadata: { state: 'failed', rtt: 600, valid: false } }),
        item({ event: 'q', agent_id: 'agent-2', metadata: { state: 'connected', rtt: 20, valid: true } }),
        item({ event: 'q', agent_id: 'agent-3', metadata: { state: 'failed', rtt: '600', valid: 0 } }),
        item({ event: 'other_error' }),
      ]);
      const ids = async (query: unknown) => (await q(s, { query })).map((e) => e.id);
      expect(await ids({ 'metadata.state': 'failed' })).toEqual([1, 3]);
      expect(await ids({ 'metadata.rtt': 600 })).toEqual([1]);
      expect(await ids({ 'metadata.rtt': '600' })).toEqual([3]);
      expect(await ids({ 'metadata.valid': false })).toEqual([1]);
      expect(await ids({ 'metadata.rtt': { $gt: 500 } })).toEqual([1]);
      expect(await ids({ 'metadata.rtt': { $gte: 20, $lt: 600 } })).toEqual([2]);
      expect(await ids({ agent_id: { $in: ['agent-1', 'agent-3'] } })).toEqual([1, 3]);
      expect(await ids({ event: 'q', agent_id: { $ne: 'agent-1' } })).toEqual([2, 3]);
      expect(await ids({ 'metadata.state': { $ne: 'failed' } })).toEqual([2, 4]);
      expect(await ids({ event: { regex: '.*error.*' } })).toEqual([4]);
      expect(await ids({ agent_id: { regex: '^agent-[12]$' } })).toEqual([1, 2]);
      expect(await ids({ 'metadata.missing': null })).toEqual([]);
    });

    it('filters by time range, orders oldest first, and pages with a cursor', async () => {
      const s = await fresh();
      await s.append([
        item({ event: 't', n: 3 }, NOW - 3_000),
        item({ event: 't', n: 1 }, NOW - 60 * 60_000),
        item({ event: 't', n: 2 }, NOW - 5_000),
      ]);
      expect((await q(s, { time_range: { from: '-30m', to: 'now' } })).map((e) => e.n)).toEqual([2, 3]);
      expect((await q(s, {})).map((e) => e.n)).toEqual([1, 2, 3]);
      const r1 = await s.query(parseQuery({ limit: 2 }, NOW), performance.now() + 5_000);
      expect(r1.bodies).toHaveLength(2);
      expect(r1.next).toBeDefined();
      const r2 = await s.query(
        { ...parseQuery({ limit: 2 }, NOW), after: r1.next },
        performance.now() + 5_000,
      );
      expect(r2.bodies.map((b) => JSON.parse(b).n)).toEqual([3]);
      expect(r2.next).toBeUndefined();
    });

    it('keeps an RFC 6962 tree over the stored events, with proofs that verify', async () => {
      const s = await fresh();
      const mem = new MemoryTree();
      for (let i = 0; i < 13; i++) await s.append([item({ event: 'm', i })]);
      for (const b of (await s.query(parseQuery({}, NOW), performance.now() + 5_000)).bodies)
        mem.append(leafHash(Buffer.from(b)));
      const head = await s.treeHead();
      expect(head.size).toBe(13);
      expect(head.root).toEqual(rootHash(mem, 13));
      expect(await s.rootAt(7)).toEqual(rootHash(mem, 7));
      expect(verifyInclusion(mem.node(0, 4), 4, 13, await s.inclusionProof(4, 13), head.root)).toBe(true);
      expect(verifyConsistency(7, 13, rootHash(mem, 7), head.root, await s.consistencyProof(7, 13))).toBe(
        true,
      );
      expect(await s.leafHashes(2, 5)).toEqual([mem.node(0, 2), mem.node(0, 3), mem.node(0, 4)]);
      await expect(s.inclusionProof(1, 14)).rejects.toThrow(RangeError);
    });

    // Batches larger and smaller than any internal chunking, and text outside ASCII: every stored
    // body is the event's canonical form, and the tree's leaves are the hashes of those bytes.
    it('stores batches of any size and non-ASCII text byte for byte, under the tree', async () => {
      const s = await fresh();
      const docs: Record<string, unknown>[] = [];
      for (const n of [1, 64, 130, 3]) {
        const batch = Array.from({ length: n }, (_, i) =>
          item({ event: 'u', text: `ü€😀 ${docs.length + i}` }),
        );
        const r = await s.append(batch);
        expect(r).toMatchObject({ status: 'ok', created: n });
        docs.push(...batch.map((b) => b.doc));
      }
      const page = await s.query(parseQuery({ limit: 1000 }, NOW), performance.now() + 5_000);
      expect(page.bodies).toEqual(docs.map((d, i) => canonicalize({ ...d, id: i + 1 })));
      const mem = new MemoryTree();
      for (const b of page.bodies) mem.append(leafHash(Buffer.from(b)));
      expect((await s.treeHead()).root).toEqual(rootHash(mem, docs.length));
      expect(
        verifyInclusion(
          mem.node(0, 100),
          100,
          docs.length,
          await s.inclusionProof(100, docs.length),
          rootHash(mem, docs.length),
        ),
      ).toBe(true);
    });

    it('prunes old content but keeps the tree, and saves checkpoints and metadata', async () => {
      const s = await fresh();
      await s.append([item({ event: 'old' }, NOW - 40 * 86_400_000), item({ event: 'new' }, NOW)]);
      const before = await s.treeHead();
      expect(await s.prune(NOW - 30 * 86_400_000)).toBe(1);
      expect(await s.prune(NOW - 30 * 86_400_000)).toBe(0);
      expect((await q(s, {})).map((e) => e.event)).toEqual(['new']);
      expect(await s.treeHead()).toEqual(before);
      expect(await s.latestCheckpoint()).toBeUndefined();
      await s.saveCheckpoint({ size: 2, root: before.root, time: '2026-11-22T12:00:00.000Z', note: 'n2' });
      await s.saveCheckpoint({ size: 1, root: before.root, time: '2026-11-22T11:00:00.000Z', note: 'n1' });
      expect((await s.latestCheckpoint())?.note).toBe('n2');
      expect(await s.getMeta('k')).toBeUndefined();
      await s.setMeta('k', 'v');
      expect(await s.getMeta('k')).toBe('v');
    });

    it('stops a query at its deadline', async () => {
      const s = await fresh();
      await s.append(
        Array.from({ length: 200 }, (_, i) => item({ event: 'slow', p: `${'a'.repeat(5_000)}!`, i })),
      );
      await expect(
        s.query(parseQuery({ query: { p: { regex: '(a+)+$' } } }, NOW), performance.now() - 1),
      ).rejects.toThrow(/deadline/);
    });
  });
}
