// Bulk access to a PostgreSQL witness log, for `witness verify --db postgres://…` (read everything
// in sequence order) and `witness migrate` (write rows as they are).
import pg from 'pg';
import { EVENT_COLUMNS, inTransaction, writeRows } from './pg-sql.js';
import { openPgStore } from './pg-store.js';
import type { StoredCheckpoint } from './store.js';

/**
 * Read-only access to a PostgreSQL log's tables in sequence order, for `witness verify --db` and
 * `witness migrate`: one connection in a REPEATABLE READ snapshot, so a witness appending meanwhile
 * cannot make the rows read disagree with each other. Pages by key, 10,000 rows at a time.
 */
export async function openPgRows(url: string) {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  c.on('error', () => {});
  await c.connect();
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  async function* pages<T>(sql: string, key: (row: T) => number): AsyncIterable<T> {
    let after = -1;
    for (;;) {
      const r = await c.query(sql, [after, 10_000]);
      yield* r.rows as T[];
      if (r.rows.length < 10_000) return;
      after = key(r.rows[r.rows.length - 1] as T);
    }
  }
  const num = <T extends Record<string, unknown>>(rows: AsyncIterable<T>, keys: (keyof T)[]) =>
    (async function* () {
      for await (const row of rows) {
        for (const k of keys) (row as Record<string, unknown>)[k as string] = Number(row[k]);
        yield row;
      }
    })();
  const checkpoints = (await c.query('SELECT size, root, note FROM checkpoints ORDER BY size')).rows.map(
    (r) => ({
      size: Number(r.size),
      root: r.root as Buffer,
      note: r.note as string,
    }),
  );
  return {
    rows: {
      checkpoints,
      leaves: num(
        pages<{ idx: number; hash: Buffer }>(
          'SELECT idx, hash FROM nodes WHERE level = 0 AND idx > $1 ORDER BY idx LIMIT $2',
          (r) => Number(r.idx),
        ),
        ['idx'],
      ),
      events: num(
        pages<{ id: number; ts_ms: number; body: string | null }>(
          'SELECT id, ts_ms, body FROM events WHERE id > $1 ORDER BY id LIMIT $2',
          (r) => Number(r.id),
        ),
        ['id', 'ts_ms'],
      ),
      prunedCount: async () =>
        Number((await c.query('SELECT COUNT(*) AS n FROM events WHERE body IS NULL')).rows[0].n),
    },
    close: async () => {
      await c.query('ROLLBACK').catch(() => {});
      await c.end().catch(() => {});
    },
  };
}

export interface ImportChunk {
  events: {
    id: number;
    ts_ms: number;
    body: string | null;
    idem_key: string | null;
    content_hash: string | null;
    [field: string]: unknown;
  }[];
  nodes: { level: number; idx: number; hash: Buffer }[];
}

/**
 * Bulk import for `witness migrate`: rows copied as they are (ids, bodies, leaves and inner nodes),
 * each chunk in one transaction that also moves `head`, so an interrupted import leaves a shorter
 * but whole log, and a second run resumes from its size.
 */
export async function openPgImport(url: string) {
  const store = await openPgStore(url, { poolSize: 1, scanThread: false });
  const pool = store.writes;
  return {
    store,
    size: () => store.treeHead().then((h) => h.size),
    writeChunk: (from: number, to: number, chunk: ImportChunk): Promise<void> =>
      inTransaction(pool, async (c) => {
        const size = Number((await c.query('SELECT size FROM head FOR UPDATE')).rows[0].size);
        if (size !== from)
          throw new Error(`the target log grew to ${size} events while importing (another writer?)`);
        await writeRows(
          c,
          EVENT_COLUMNS.map((col) => chunk.events.map((e) => e[col] ?? null)),
          [chunk.nodes.map((n) => n.level), chunk.nodes.map((n) => n.idx), chunk.nodes.map((n) => n.hash)],
          to,
        );
      }),
    async copyCheckpoints(cps: StoredCheckpoint[]): Promise<number> {
      if (!cps.length) return 0;
      const r = await pool.query(
        `INSERT INTO checkpoints (size, root, time, note) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::text[])
         ON CONFLICT (size) DO NOTHING`,
        [cps.map((c) => c.size), cps.map((c) => c.root), cps.map((c) => c.time), cps.map((c) => c.note)],
      );
      return r.rowCount ?? 0;
    },
    close: () => store.close(),
  };
}
