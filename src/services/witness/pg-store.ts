// IF.witness on PostgreSQL (node-postgres). Several witness instances may share one database: every
// append transaction first locks the single row of `head` (SELECT … FOR UPDATE), so appends from all
// instances are serialised; inside that transaction it reads the tree's compact range at the locked
// size, checks idempotency keys, assigns the next sequence numbers, and writes events, Merkle nodes
// and the new size together. A writer killed mid-transaction leaves nothing behind (its transaction
// rolls back and the lock is released), so the sequence stays gap-free and the tree verifiable.
// An instance that appended last, appending events without idempotency keys, skips the lock: one
// statement moves head from the size it knows and writes the rows only if head still held it
// (writeRowsIfSize), else the locked transaction runs. One round trip instead of four.
import pg from 'pg';
import { canonicalize } from '../../crypto/jcs.js';
import {
  CompactRange,
  consistencyProof,
  type Hash,
  inclusionProof,
  leafHashOfText,
  type NodeSource,
  nodeHash,
  rootHash,
} from '../../crypto/merkle.js';
import { INDEXED_FIELDS } from '../../protocol/witness.js';
import { bodyWithId, itemContentHash } from './event-body.js';
import { PgScanThread } from './pg-scan.js';
import {
  checkout,
  EVENT_COLUMNS,
  inTransaction,
  matchesAll,
  pageSql,
  writeRows,
  writeRowsIfSize,
} from './pg-sql.js';
import { compileRegex, type ParsedQuery } from './query.js';
import {
  type AppendItem,
  type AppendResult,
  pageOf,
  type QueryResult,
  QueryTimeoutError,
  type ScanRow,
  type StoredCheckpoint,
  type WitnessStore,
} from './store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id BIGINT PRIMARY KEY,
  ts_ms BIGINT NOT NULL,
  body TEXT,
  idem_key TEXT UNIQUE,
  content_hash TEXT,
  ${INDEXED_FIELDS.map((f) => `${f} TEXT`).join(',\n  ')}
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts_ms, id);
${INDEXED_FIELDS.map((f) => `CREATE INDEX IF NOT EXISTS events_${f}_ts ON events(${f}, ts_ms, id) WHERE ${f} IS NOT NULL;`).join('\n')}
-- Every Merkle node of a perfect subtree, leaves (level 0) included, apart from the events rows so
-- that an edited, moved or inserted row no longer matches its leaf (as in the SQLite store).
CREATE TABLE IF NOT EXISTS nodes (level INT NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL, PRIMARY KEY (level, idx));
CREATE TABLE IF NOT EXISTS checkpoints (size BIGINT PRIMARY KEY, root BYTEA NOT NULL, time TEXT NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- The one row every append locks: the log's size, and so the next sequence number.
CREATE TABLE IF NOT EXISTS head (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), size BIGINT NOT NULL);
INSERT INTO head (one, size) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;
`;

// Any constant: instances creating the schema at once take turns instead of racing on the catalog.
const SCHEMA_LOCK = 0x1f_4e55;
const NODES_SQL =
  'SELECT n.level, n.idx, n.hash FROM unnest($1::int[], $2::bigint[]) AS w(level, idx) JOIN nodes n USING (level, idx)';
const QUERY_TIMEOUT_CODE = '57014';
// Regexes are evaluated here with re2js (RE2 semantics: linear time, no catastrophic backtracking),
// over pages of candidate rows, in slices of SLICE_MS between turns of the event loop, as on SQLite.
const REGEX_PAGE = 500;
const SLICE_MS = 2;
// While an append is in flight its round trips' replies wait for the running slice: shorter slices then.
const SLICE_MS_WHILE_APPENDING = 0.5;

interface Pending {
  items: AppendItem[];
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

export interface PgStoreOptions {
  /** Connections for appends and proofs (default 4) and for queries (default 2). */
  poolSize?: number;
  connectTimeoutMs?: number;
  /**
   * Monotonic milliseconds for query slices and deadlines (default performance.now); the server's
   * `monotonicNow`. Injected, regex queries run in-process on that clock instead of on the scan thread.
   */
  monotonicNow?: () => number;
  /**
   * Regex queries on a worker thread started with the store (default true, false with an injected
   * clock); false for a tool that never queries (pg-bulk: `witness migrate`).
   */
  scanThread?: boolean;
}

export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/** The URL without its password, for logs and ready documents. */
export function redactDbUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = 'redacted';
    return u.toString();
  } catch {
    return 'postgres://<unparseable URL>';
  }
}

/** Opens (and creates the schema of) a witness log in a PostgreSQL database. */
export async function openPgStore(url: string, opts: PgStoreOptions = {}): Promise<PgWitnessStore> {
  const connectionTimeoutMillis = opts.connectTimeoutMs ?? 10_000;
  const writes = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 4, connectionTimeoutMillis });
  const reads = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis });
  // A connection the server drops while idle must not crash the process; the next use reconnects.
  writes.on('error', () => {});
  reads.on('error', () => {});
  try {
    await inTransaction(writes, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      await c.query(SCHEMA);
    });
  } catch (err) {
    await Promise.allSettled([writes.end(), reads.end()]);
    throw err;
  }
  const threaded = (opts.scanThread ?? true) && !opts.monotonicNow;
  const scanFrom = threaded ? { url, connectTimeoutMs: connectionTimeoutMillis } : undefined;
  return new PgWitnessStore(writes, reads, opts.monotonicNow ?? (() => performance.now()), scanFrom);
}

/** Records which nodes an algorithm asks for, answering with placeholders; the access pattern of the
 * Merkle functions depends on sizes and indices only, so a second run with the real nodes is exact. */
class NodeRecorder implements NodeSource {
  readonly wanted = new Map<string, [number, number]>();
  node(level: number, index: number): Hash {
    this.wanted.set(`${level}:${index}`, [level, index]);
    return nodeHash(Buffer.alloc(0), Buffer.alloc(0));
  }
}

export class PgWitnessStore implements WitnessStore {
  readonly kind = 'postgres';
  private queue: Pending[] = [];
  private draining: Promise<void> | undefined;
  private closed = false;
  /** The compact range after this instance's last committed append, valid while head has that size. */
  private range: CompactRange | undefined;
  /** Where regex queries run: started with the store, so the first storm does not wait for it. */
  private scanThread: PgScanThread | undefined;

  constructor(
    readonly writes: pg.Pool,
    private readonly reads: pg.Pool,
    private readonly monotonicNow: () => number,
    private readonly scanFrom?: { url: string; connectTimeoutMs: number },
  ) {
    this.scanner();
  }

  /** The scan thread, a new one if the last one died (its queries were answered with its error). */
  private scanner(): PgScanThread | undefined {
    if (!this.scanFrom || this.closed) return undefined;
    if (!this.scanThread || this.scanThread.failed)
      this.scanThread = new PgScanThread(this.scanFrom.url, this.scanFrom.connectTimeoutMs);
    return this.scanThread;
  }

  append(items: AppendItem[]): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  // Group commit: appends that arrive while a transaction is in flight share the next one.
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const results = await this.transaction(batch.map((p) => p.items));
        for (const [i, p] of batch.entries()) p.resolve(results[i]!);
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.draining = undefined;
  }

  private async transaction(batches: AppendItem[][]): Promise<AppendResult[]> {
    // One round trip instead of four (BEGIN, lock head, write, COMMIT) when this instance appended
    // last and no event carries an idempotency key (those are checked under the lock).
    const range = this.range;
    if (range && !batches.some((items) => items.some((i) => i.idempotencyKey !== undefined))) {
      this.range = undefined;
      const expected = range.size;
      const rows: unknown[][] = EVENT_COLUMNS.map(() => []);
      const nodes: [number[], number[], Buffer[]] = [[], [], []];
      const results = batches.map((items) => appendOne(items, new Map(), range, rows, nodes));
      if (await writeRowsIfSize(this.writes, rows, nodes, range.size, expected)) {
        this.range = range;
        return results;
      }
      // Another instance appended since: the locked path reads the range again.
    }
    return this.lockedTransaction(batches);
  }

  private lockedTransaction(batches: AppendItem[][]): Promise<AppendResult[]> {
    return inTransaction(this.writes, async (c) => {
      const size = Number((await c.query('SELECT size FROM head FOR UPDATE')).rows[0].size);
      // The range this instance left after its own last append is still right if nobody appended
      // since (nodes below the size never change); otherwise it is read again, O(log n) rows.
      const range = this.range?.size === size ? this.range : await compactRange(c, size);
      this.range = undefined;
      const keys = [...new Set(batches.flat().flatMap((i) => (i.idempotencyKey ? [i.idempotencyKey] : [])))];
      const known = new Map<string, { id: number; hash: string }>();
      if (keys.length) {
        const r = await c.query(
          'SELECT idem_key, id, content_hash FROM events WHERE idem_key = ANY($1::text[])',
          [keys],
        );
        for (const row of r.rows) known.set(row.idem_key, { id: Number(row.id), hash: row.content_hash });
      }
      const rows: unknown[][] = EVENT_COLUMNS.map(() => []);
      const nodes: [number[], number[], Buffer[]] = [[], [], []];
      const results = batches.map((items) => appendOne(items, known, range, rows, nodes));
      if (rows[0]!.length) await writeRows(c, rows, nodes, range.size);
      return { results, range };
    }).then(({ results, range }) => {
      this.range = range;
      return results;
    });
  }

  async query(q: ParsedQuery, deadlineMs: number): Promise<QueryResult> {
    const expired = () => new QueryTimeoutError('query deadline exceeded');
    if (this.monotonicNow() >= deadlineMs) throw expired();
    const regexes = q.conditions.flatMap((c) =>
      c.op === 'regex' ? [{ path: c.path, pattern: c.pattern }] : [],
    );
    const page = regexes.length ? REGEX_PAGE : q.limit + 1;
    const { sqlFirst, sqlAfter, params } = pageSql(q);
    const initial = q.after ? { ts: q.after.tsMs, id: q.after.id } : undefined;
    const scanner = regexes.length ? this.scanner() : undefined;
    if (scanner) {
      const rows = await scanner.scan(
        {
          sqlFirst,
          sqlAfter,
          params,
          after: initial,
          limit: q.limit,
          page,
          regexes,
        },
        deadlineMs - this.monotonicNow(),
      );
      return pageOf(rows, q.limit);
    }
    const compiled = regexes.map((r) => ({ path: r.path, re: compileRegex(r.pattern, 'regex') }));
    const out: ScanRow[] = [];
    let after = initial;
    const { c, release } = await checkout(this.reads);
    let broken = false;
    try {
      for (;;) {
        const left = deadlineMs - this.monotonicNow();
        if (left <= 0) throw expired();
        // PostgreSQL stops the statement itself at the deadline, so a slow scan costs no more than that.
        await c.query('SELECT set_config($1, $2, false)', ['statement_timeout', String(Math.ceil(left))]);
        const r = after
          ? await c.query(sqlAfter, [...params, after.ts, after.id, page])
          : await c.query(sqlFirst, [...params, page]);
        const slice = () => this.monotonicNow() + (this.draining ? SLICE_MS_WHILE_APPENDING : SLICE_MS);
        let sliceEnd = slice();
        for (const row of r.rows) {
          if (regexes.length && this.monotonicNow() > sliceEnd) {
            // Let other requests (and /health) run between slices of regex work.
            await new Promise((resolve) => setImmediate(resolve));
            if (this.monotonicNow() > deadlineMs) throw expired();
            sliceEnd = slice();
          }
          if (regexes.length && !matchesAll(row.body, compiled)) continue;
          out.push({ id: Number(row.id), ts_ms: Number(row.ts_ms), body: row.body });
          if (out.length > q.limit) break;
        }
        const last = r.rows[r.rows.length - 1];
        if (out.length > q.limit || r.rows.length < page || !last) break;
        after = { ts: Number(last.ts_ms), id: Number(last.id) };
      }
    } catch (err) {
      if ((err as { code?: string }).code === QUERY_TIMEOUT_CODE) throw expired();
      broken = !(err instanceof QueryTimeoutError);
      throw err;
    } finally {
      release(broken);
    }
    return pageOf(out, q.limit);
  }

  async treeHead(): Promise<{ size: number; root: Hash }> {
    const size = await this.size();
    const cached = this.range;
    if (cached?.size === size) return { size, root: cached.root() };
    return { size, root: (await compactRange(this.writes, size)).root() };
  }

  private async size(): Promise<number> {
    return Number((await this.writes.query('SELECT size FROM head')).rows[0]?.size ?? 0);
  }

  private async beyond(size: number): Promise<void> {
    const have = await this.size();
    if (size > have) throw new RangeError(`tree size ${size} is beyond the log (${have})`);
  }

  /** Runs a Merkle computation over stored nodes: once to learn which nodes, once with them. */
  private async withNodes<T>(fn: (src: NodeSource) => T): Promise<T> {
    const rec = new NodeRecorder();
    fn(rec);
    const wanted = [...rec.wanted.values()];
    const r = await this.writes.query(NODES_SQL, [wanted.map((w) => w[0]), wanted.map((w) => w[1])]);
    const found = new Map<string, Hash>(r.rows.map((row) => [`${row.level}:${row.idx}`, row.hash]));
    return fn({
      node(level, index) {
        const h = found.get(`${level}:${index}`);
        if (!h) throw new Error(`merkle node (${level}, ${index}) is missing from the database`);
        return h;
      },
    });
  }

  async rootAt(size: number): Promise<Hash> {
    await this.beyond(size);
    return this.withNodes((src) => rootHash(src, size));
  }

  async inclusionProof(index: number, size: number): Promise<Hash[]> {
    await this.beyond(size);
    return this.withNodes((src) => inclusionProof(src, index, size));
  }

  async consistencyProof(size1: number, size2: number): Promise<Hash[]> {
    await this.beyond(size2);
    return this.withNodes((src) => consistencyProof(src, size1, size2));
  }

  async leafHashes(start: number, end: number): Promise<Hash[]> {
    const r = await this.writes.query(
      'SELECT hash FROM nodes WHERE level = 0 AND idx >= $1 AND idx < $2 ORDER BY idx',
      [start, end],
    );
    return r.rows.map((row) => row.hash as Hash);
  }

  async saveCheckpoint(cp: StoredCheckpoint): Promise<void> {
    await this.writes.query(
      `INSERT INTO checkpoints (size, root, time, note) VALUES ($1, $2, $3, $4)
       ON CONFLICT (size) DO UPDATE SET root = EXCLUDED.root, time = EXCLUDED.time, note = EXCLUDED.note`,
      [cp.size, cp.root, cp.time, cp.note],
    );
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const row = (
      await this.writes.query('SELECT size, root, time, note FROM checkpoints ORDER BY size DESC LIMIT 1')
    ).rows[0];
    return row ? { size: Number(row.size), root: row.root, time: row.time, note: row.note } : undefined;
  }

  async prune(cutoffMs: number): Promise<number> {
    const r = await this.writes.query(
      `UPDATE events SET body = NULL, ${INDEXED_FIELDS.map((f) => `${f} = NULL`).join(', ')} WHERE ts_ms < $1 AND body IS NOT NULL`,
      [cutoffMs],
    );
    return r.rowCount ?? 0;
  }

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.writes.query('SELECT value FROM meta WHERE key = $1', [key])).rows[0]?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.writes.query(
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
      [key, value],
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.draining;
    await Promise.allSettled([this.writes.end(), this.reads.end(), this.scanThread?.close()]);
  }
}

/** The compact range at the current size, from the O(log n) stored perfect-subtree roots. */
async function compactRange(c: pg.Pool | pg.PoolClient, size: number): Promise<CompactRange> {
  const rec = new NodeRecorder();
  CompactRange.fromSource(rec, size);
  const wanted = [...rec.wanted.values()];
  const r = await c.query(NODES_SQL, [wanted.map((w) => w[0]), wanted.map((w) => w[1])]);
  const found = new Map<string, Hash>(r.rows.map((row) => [`${row.level}:${row.idx}`, row.hash]));
  return CompactRange.fromSource(
    {
      node: (level, index) => {
        const h = found.get(`${level}:${index}`);
        if (!h)
          throw new Error(`merkle node (${level}, ${index}) for size ${size} is missing from the database`);
        return h;
      },
    },
    size,
  );
}

/** Assigns ids to one request's events, or refuses it whole on an idempotency conflict. */
function appendOne(
  items: AppendItem[],
  known: Map<string, { id: number; hash: string }>,
  range: CompactRange,
  rows: unknown[][],
  nodes: [number[], number[], Buffer[]],
): AppendResult {
  // Decide every key before assigning anything, so a conflict leaves no partial request.
  const inBatch = new Map<string, string>();
  for (const [i, item] of items.entries()) {
    const k = item.idempotencyKey;
    if (k === undefined) continue;
    const hash = known.get(k)?.hash ?? inBatch.get(k);
    const mine = itemContentHash(item);
    if (hash !== undefined && hash !== mine) return { status: 'conflict', index: i, key: k };
    inBatch.set(k, mine);
  }
  const ids: number[] = [];
  let created = 0;
  for (const item of items) {
    const k = item.idempotencyKey;
    const had = k === undefined ? undefined : known.get(k);
    if (had) {
      ids.push(had.id);
      continue;
    }
    const id = range.size + 1;
    const body = item.canonical ? bodyWithId(item.canonical, id) : canonicalize({ ...item.doc, id });
    const leaf = leafHashOfText(body);
    const hash = k === undefined ? (item.contentHash ?? null) : itemContentHash(item);
    const values = [
      id,
      item.tsMs,
      body,
      k ?? null,
      hash,
      ...INDEXED_FIELDS.map((f) => (typeof item.doc[f] === 'string' ? item.doc[f] : null)),
    ];
    for (const [col, v] of values.entries()) rows[col]!.push(v);
    nodes[0].push(0);
    nodes[1].push(id - 1);
    nodes[2].push(leaf);
    for (const n of range.append(leaf)) {
      nodes[0].push(n.level);
      nodes[1].push(n.index);
      nodes[2].push(n.hash);
    }
    if (k !== undefined) known.set(k, { id, hash: hash! });
    ids.push(id);
    created += 1;
  }
  return { status: 'ok', ids, created };
}
