import Database from 'better-sqlite3';
import {
  consistencyProof,
  type Hash,
  inclusionProof,
  type NodeSource,
  rootHash,
} from '../../crypto/merkle.js';
import { INDEXED_FIELDS } from '../../protocol/witness.js';
import { type Condition, compileRegex, type ParsedQuery } from './query.js';
import { FIRST_STORED_LEVEL, GroupCommitter, nodeFromLeaves } from './sqlite-append.js';
import { SqliteScanThread } from './sqlite-scan.js';
import { EVENT_ROW_WIDTH, SqliteWriter } from './sqlite-writer.js';
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
  id INTEGER PRIMARY KEY,
  ts_ms INTEGER NOT NULL,
  body TEXT,
  idem_key TEXT,
  content_hash TEXT,
  ${INDEXED_FIELDS.map((f) => `${f} TEXT`).join(',\n  ')}
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts_ms);
${INDEXED_FIELDS.map((f) => `CREATE INDEX IF NOT EXISTS events_${f}_ts ON events(${f}, ts_ms) WHERE ${f} IS NOT NULL;`).join('\n')}
-- Every Merkle node of a perfect subtree, leaves (level 0) included. Leaves live here rather than in
-- the events row so that an edited, moved or inserted row no longer matches its leaf.
CREATE TABLE IF NOT EXISTS nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, root BLOB NOT NULL, time TEXT NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

const INDEXED = new Set<string>(INDEXED_FIELDS);

// The insert of an event row's EVENT_ROW_WIDTH columns, in the order GroupCommitter.plan packs
// them, up to VALUES: the writer adds the rows of placeholders.
const INSERT_EVENT = `INSERT INTO events (id, ts_ms, body, idem_key, content_hash, ${INDEXED_FIELDS.join(', ')}) VALUES`;
if (5 + INDEXED_FIELDS.length !== EVENT_ROW_WIDTH) throw new Error('EVENT_ROW_WIDTH is out of date');

// Queries run in slices of SLICE_MS so that one expensive query cannot hold the event loop: SQLite
// calls ifw_tick(ts_ms, id) for every candidate row, which records where the scan is and ends the
// slice by throwing; the query resumes from that row after other work has had its turn. This works
// while the scan visits rows in (ts_ms, id) order, which the ORDER BY and the (…, ts_ms) indexes
// give; if a plan ever visits rows out of order, slicing is switched off for that query and only
// its overall deadline applies. performance.now() costs tens of nanoseconds: fine per row.
// Appends go first: a slice does not start while an append waits to be planned (its commit runs on
// the writer thread), so a write arriving meanwhile waits for at most the one slice running.
// This in-process path serves queries without a regex condition, and regex queries when a clock is
// injected (tests); otherwise those run on the scan thread (sqlite-scan.ts) and need no slices.
const SLICE_MS = 2;

class SliceExpired extends Error {}

const scan = {
  now: () => performance.now(),
  deadline: Number.POSITIVE_INFINITY,
  sliceEnd: Number.POSITIVE_INFINITY,
  last: undefined as { ts: number; id: number } | undefined,
  ordered: true,
};

function tick(ts: unknown, id: unknown): void {
  const t = scan.now();
  if (t > scan.deadline) throw new QueryTimeoutError('query deadline exceeded');
  if (typeof ts !== 'number' || typeof id !== 'number') return;
  const last = scan.last;
  if (last && (ts < last.ts || (ts === last.ts && id <= last.id))) scan.ordered = false;
  scan.last = { ts, id };
  if (scan.ordered && t > scan.sliceEnd) throw new SliceExpired();
}

export interface SqliteStoreOptions {
  /**
   * Monotonic milliseconds for query slices and deadlines (default performance.now). It must be
   * the witness server's `monotonicNow`, as deadlines come from it; tests inject a fake one.
   */
  monotonicNow?: () => number;
}

export function openSqliteStore(file: string, opts: SqliteStoreOptions = {}): SqliteWitnessStore {
  return new SqliteWitnessStore(file, opts);
}

export class SqliteWitnessStore implements WitnessStore, NodeSource {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly writer: SqliteWriter;
  private readonly committer: GroupCommitter;
  /**
   * Regex scans run on a thread of their own, unless a clock was injected: a thread's clock cannot
   * be faked, so such tests prove the in-process sliced path. Started with the store, so that its
   * start-up (tens of ms) is not paid by the first query, or in the middle of a storm; replaced by
   * the next query if it died.
   */
  private scanThread: SqliteScanThread | undefined;
  private readonly scansOnThread: boolean;
  private closed = false;
  private readonly stmtCache = new Map<string, Database.Statement>();
  private readonly s: Record<string, Database.Statement>;
  private readonly monotonicNow: () => number;

  constructor(
    readonly file: string,
    opts: SqliteStoreOptions,
  ) {
    this.monotonicNow = opts.monotonicNow ?? (() => performance.now());
    this.db = new Database(file);
    // An acknowledged event must survive kill -9 and power loss: WAL with a full fsync per commit.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    // Logs created before issue 24.4 declare idem_key UNIQUE, which also indexes the NULL of every
    // event without a key: one B-tree insert per event for nothing. Newer logs index only the keys.
    const legacyUnique = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'sqlite_autoindex_events_1'")
      .get();
    if (!legacyUnique)
      this.db.exec(
        'CREATE UNIQUE INDEX IF NOT EXISTS events_idem_key ON events(idem_key) WHERE idem_key IS NOT NULL',
      );
    this.db.function('ifw_regexp', { deterministic: true }, (pattern: unknown, value: unknown) => {
      if (typeof value !== 'string' || typeof pattern !== 'string') return 0;
      // test() searches as matcher().find() does, on re2js's DFA: ten times faster on long values.
      return compileRegex(pattern, 'regex').test(value) ? 1 : 0;
    });
    this.db.function('ifw_tick', { deterministic: false }, (ts: unknown, id: unknown) => {
      tick(ts, id);
      return 1;
    });
    this.s = {
      node: this.db.prepare('SELECT hash FROM nodes WHERE level = ? AND idx = ?').pluck(),
      size: this.db.prepare('SELECT COUNT(*) FROM nodes WHERE level = 0').pluck(),
      byKey: this.db.prepare('SELECT id, content_hash FROM events WHERE idem_key = ?'),
      leaves: this.db
        .prepare('SELECT hash FROM nodes WHERE level = 0 AND idx >= ? AND idx < ? ORDER BY idx')
        .pluck(),
      latestCheckpoint: this.db.prepare(
        'SELECT size, root, time, note FROM checkpoints ORDER BY size DESC LIMIT 1',
      ),
      getMeta: this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      setMeta: this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      prune: this.db.prepare(
        `UPDATE events SET body = NULL, ${INDEXED_FIELDS.map((f) => `${f} = NULL`).join(', ')} WHERE ts_ms < ? AND body IS NOT NULL`,
      ),
    };
    this.writer = new SqliteWriter(file, INSERT_EVENT, FIRST_STORED_LEVEL);
    this.committer = new GroupCommitter(this, this.writer);
    this.scansOnThread = opts.monotonicNow === undefined;
    this.scanner();
  }

  private scanner(): SqliteScanThread | undefined {
    if (!this.scansOnThread || this.closed) return undefined;
    if (!this.scanThread || this.scanThread.failed) this.scanThread = new SqliteScanThread(this.file);
    return this.scanThread;
  }

  size(): number {
    return this.s.size!.get() as number;
  }

  node(level: number, index: number): Hash {
    const h =
      (this.s.node!.get(level, index) as Buffer | undefined) ??
      nodeFromLeaves(level, index, (start, end) => this.s.leaves!.all(start, end) as Hash[]);
    if (!h) throw new Error(`merkle node (${level}, ${index}) is missing from ${this.file}`);
    return h;
  }

  append(items: AppendItem[]): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return this.committer.append(items);
  }

  /** The committed event holding an idempotency key. */
  storedKey(key: string): { id: number; hash: string } | undefined {
    const row = this.s.byKey!.get(key) as { id: number; content_hash: string } | undefined;
    return row && { id: row.id, hash: row.content_hash };
  }

  async query(q: ParsedQuery, deadlineMs: number): Promise<QueryResult> {
    // Exclusive resume point from the caller's cursor; inclusive after a slice ends mid-row.
    let resume = q.after ? { ts: q.after.tsMs, id: q.after.id, inclusive: false } : undefined;
    const scanner = q.conditions.some((c) => c.op === 'regex') ? this.scanner() : undefined;
    if (scanner) {
      const { sql, params } = selectSql(q, resume, q.limit + 1);
      return pageOf(await scanner.all(sql, params, deadlineMs - this.monotonicNow()), q.limit);
    }
    const rows: ScanRow[] = [];
    for (;;) {
      const { sql, params } = selectSql(q, resume, q.limit + 1 - rows.length);
      const stmt = this.statement(sql);
      scan.now = this.monotonicNow;
      scan.deadline = deadlineMs;
      scan.sliceEnd = this.monotonicNow() + SLICE_MS;
      scan.last = undefined;
      scan.ordered = true;
      try {
        for (const row of stmt.iterate(...params) as Iterable<{ id: number; ts_ms: number; body: string }>)
          rows.push(row);
        break;
      } catch (err) {
        // Set by tick() during iterate(); TypeScript cannot see that write.
        const stopped = scan.last as { ts: number; id: number } | undefined;
        if (!(err instanceof SliceExpired) || !stopped) throw err;
        resume = { ts: stopped.ts, id: stopped.id, inclusive: true };
      } finally {
        scan.deadline = Number.POSITIVE_INFINITY;
        scan.sliceEnd = Number.POSITIVE_INFINITY;
      }
      // Other work's turn; pending appends first (bounded by the deadline).
      do {
        await new Promise((r) => setImmediate(r));
        if (this.monotonicNow() > deadlineMs) throw new QueryTimeoutError('query deadline exceeded');
      } while (this.committer.flushScheduled);
    }
    return pageOf(rows, q.limit);
  }

  private statement(sql: string): Database.Statement {
    let stmt = this.stmtCache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (this.stmtCache.size > 200) this.stmtCache.clear();
      this.stmtCache.set(sql, stmt);
    }
    return stmt;
  }

  async treeHead(): Promise<{ size: number; root: Hash }> {
    return this.committer.head;
  }

  async rootAt(size: number): Promise<Hash> {
    if (size > this.committer.head.size)
      throw new RangeError(`tree size ${size} is beyond the log (${this.committer.head.size})`);
    return rootHash(this, size);
  }

  async inclusionProof(index: number, size: number): Promise<Hash[]> {
    if (size > this.committer.head.size)
      throw new RangeError(`tree size ${size} is beyond the log (${this.committer.head.size})`);
    return inclusionProof(this, index, size);
  }

  async consistencyProof(size1: number, size2: number): Promise<Hash[]> {
    if (size2 > this.committer.head.size)
      throw new RangeError(`tree size ${size2} is beyond the log (${this.committer.head.size})`);
    return consistencyProof(this, size1, size2);
  }

  async leafHashes(start: number, end: number): Promise<Hash[]> {
    return this.s.leaves!.all(start, end) as Hash[];
  }

  saveCheckpoint(cp: StoredCheckpoint): Promise<void> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return this.committer.saveCheckpoint(cp);
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const row = this.s.latestCheckpoint!.get() as StoredCheckpoint | undefined;
    return row ? { size: row.size, root: Buffer.from(row.root), time: row.time, note: row.note } : undefined;
  }

  async prune(cutoffMs: number): Promise<number> {
    return this.s.prune!.run(cutoffMs).changes;
  }

  async getMeta(key: string): Promise<string | undefined> {
    return (this.s.getMeta!.get(key) as string | undefined) ?? undefined;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.s.setMeta!.run(key, value);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Every append and checkpoint accepted before close is written first.
    await this.committer.drain();
    await this.writer.close();
    await this.scanThread?.close();
    this.db.close();
  }
}

/** The query's statement from `resume` on, at most `limit` rows; ifw_tick sees every candidate. */
function selectSql(
  q: ParsedQuery,
  resume: { ts: number; id: number; inclusive: boolean } | undefined,
  limit: number,
): { sql: string; params: unknown[] } {
  const where: string[] = ['body IS NOT NULL'];
  const params: unknown[] = [];
  if (q.fromMs !== undefined) {
    where.push('ts_ms >= ?');
    params.push(q.fromMs);
  }
  if (q.toMs !== undefined) {
    where.push('ts_ms <= ?');
    params.push(q.toMs);
  }
  if (resume) {
    where.push(`(ts_ms > ? OR (ts_ms = ? AND id ${resume.inclusive ? '>=' : '>'} ?))`);
    params.push(resume.ts, resume.ts, resume.id);
  }
  for (const c of q.conditions) where.push(conditionSql(c, params));
  where.push('ifw_tick(ts_ms, id)');
  params.push(limit);
  return {
    sql: `SELECT id, ts_ms, body FROM events WHERE ${where.join(' AND ')} ORDER BY ts_ms, id LIMIT ?`,
    params,
  };
}

function jsonPath(path: string[]): string {
  return `'$${path.map((p) => `."${p}"`).join('')}'`;
}

function literalSql(path: string[], value: unknown, params: unknown[], op = '='): string {
  const indexed = path.length === 1 && INDEXED.has(path[0]!);
  if (typeof value === 'string' && indexed) {
    params.push(value);
    return `${path[0]} ${op} ?`;
  }
  const p = jsonPath(path);
  if (value === null) return op === '=' ? `json_type(body, ${p}) = 'null'` : '0';
  if (typeof value === 'boolean') return op === '=' ? `json_type(body, ${p}) = '${value}'` : '0';
  params.push(value);
  const type = typeof value === 'number' ? `IN ('integer', 'real')` : `= 'text'`;
  return `(json_type(body, ${p}) ${type} AND json_extract(body, ${p}) ${op} ?)`;
}

const CMP = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

function conditionSql(c: Condition, params: unknown[]): string {
  switch (c.op) {
    case 'eq':
      return literalSql(c.path, c.value, params);
    case 'ne':
      return `NOT COALESCE(${literalSql(c.path, c.value, params)}, 0)`;
    case 'in':
      return `(${c.values.map((v) => `COALESCE(${literalSql(c.path, v, params)}, 0)`).join(' OR ')})`;
    case 'regex': {
      const indexed = c.path.length === 1 && INDEXED.has(c.path[0]!);
      params.push(c.pattern);
      if (indexed) return `ifw_regexp(?, ${c.path[0]})`;
      const p = jsonPath(c.path);
      return `ifw_regexp(?, CASE WHEN json_type(body, ${p}) = 'text' THEN json_extract(body, ${p}) END)`;
    }
    default:
      return literalSql(c.path, c.value, params, CMP[c.op]);
  }
}
