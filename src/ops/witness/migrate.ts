// `witness migrate --from sqlite:PATH --to postgres://…`: copies a log as it is — ids, bodies (pruned
// ones too), every Merkle node and every signed checkpoint — so the copy has the same tree head and
// verifies with the same key. Chunks are committed one by one together with the target's size, so an
// interrupted migration is resumed by running it again: it checks that the target's tree is the
// source's tree at that size, then copies the rest.
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { type Hash, type NodeSource, rootHash } from '../../crypto/merkle.js';
import { InterruptedError, UnreachableError, UsageError } from '../../errors.js';
import { INDEXED_FIELDS } from '../../protocol/witness.js';
import { type ImportChunk, openPgImport } from '../../services/witness/pg-bulk.js';
import { isPostgresUrl, redactDbUrl } from '../../services/witness/pg-store.js';
import { FIRST_STORED_LEVEL, nodeFromLeaves } from '../../services/witness/sqlite-append.js';
import type { StoredCheckpoint } from '../../services/witness/store.js';

export interface MigrateOptions {
  from: string;
  to: string;
  /** Events per transaction. */
  batch: number;
  dryRun: boolean;
  signal?: AbortSignal;
  onProgress?: (copied: number, total: number) => void;
  now?: () => number;
}

export interface MigratePlan {
  source: string;
  target: string;
  source_size: number;
  /** Events already in the target (a previous, interrupted run): the copy resumes after them. */
  target_size: number;
  to_copy: number;
  checkpoints: number;
}

export interface MigrateReport extends MigratePlan {
  dry_run: boolean;
  ok: boolean;
  copied: number;
  checkpoints_copied: number;
  tree_size: number;
  /** base64 */
  source_root: string;
  target_root: string;
  elapsed_ms: number;
  events_per_second: number;
}

function sourcePath(from: string): string {
  const file = from.replace(/^sqlite:(\/\/)?/, '');
  if (isPostgresUrl(from))
    throw new UsageError(
      '--from must be a SQLite log',
      'use --from sqlite:PATH (PostgreSQL to PostgreSQL: pg_dump)',
    );
  if (!existsSync(file))
    throw new UsageError(`${file} does not exist`, 'pass the witness database as --from sqlite:PATH');
  return file;
}

class SqliteSource implements NodeSource {
  readonly db: Database.Database;
  private readonly nodeStmt: Database.Statement;
  private readonly leavesStmt: Database.Statement;
  constructor(file: string) {
    try {
      this.db = new Database(file, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new UsageError(`cannot open ${file}: ${(err as Error).message}`);
    }
    // One read transaction: a witness still writing to the file cannot change what is copied.
    this.db.prepare('BEGIN').run();
    this.nodeStmt = this.db.prepare('SELECT hash FROM nodes WHERE level = ? AND idx = ?').pluck();
    this.leavesStmt = this.db
      .prepare('SELECT hash FROM nodes WHERE level = 0 AND idx >= ? AND idx < ? ORDER BY idx')
      .pluck();
  }
  node(level: number, index: number): Hash {
    const h =
      (this.nodeStmt.get(level, index) as Buffer | undefined) ??
      nodeFromLeaves(level, index, (start, end) => this.leavesStmt.all(start, end) as Hash[]);
    if (!h)
      throw new UsageError(
        `the source log has no Merkle node (${level}, ${index}); run witness verify on it`,
      );
    return h;
  }
  size(): number {
    return this.db.prepare('SELECT COUNT(*) FROM nodes WHERE level = 0').pluck().get() as number;
  }
  checkpoints(): StoredCheckpoint[] {
    return this.db
      .prepare('SELECT size, root, time, note FROM checkpoints ORDER BY size')
      .all() as StoredCheckpoint[];
  }
  /** Events with from < id <= to, and every node whose subtree ends in that range. */
  chunk(from: number, to: number): ImportChunk {
    const events = this.db
      .prepare(
        `SELECT id, ts_ms, body, idem_key, content_hash, ${INDEXED_FIELDS.join(', ')} FROM events WHERE id > ? AND id <= ? ORDER BY id`,
      )
      .all(from, to) as ImportChunk['events'];
    const nodes: ImportChunk['nodes'] = [];
    const stmt = this.db.prepare(
      'SELECT level, idx, hash FROM nodes WHERE level = ? AND idx >= ? AND idx < ?',
    );
    // At level L the node idx covers leaves up to (idx + 1) * 2^L: those ending in (from, to].
    for (let level = 0; 2 ** level <= to; level++) {
      const lo = Math.floor(from / 2 ** level);
      const hi = Math.floor(to / 2 ** level);
      if (hi <= lo) continue;
      if (level === 0 || level >= FIRST_STORED_LEVEL) {
        nodes.push(...(stmt.all(level, lo, hi) as ImportChunk['nodes']));
        continue;
      }
      // Logs written since issue 24.4 do not store these levels (older ones do); the target stores
      // every level, so they are recomputed from the leaves.
      for (let idx = lo; idx < hi; idx++) nodes.push({ level, idx, hash: this.node(level, idx) });
    }
    return { events, nodes };
  }
  close(): void {
    this.db.close();
  }
}

export async function migrateWitness(o: MigrateOptions): Promise<MigrateReport> {
  const now = o.now ?? (() => performance.now());
  const file = sourcePath(o.from);
  if (!isPostgresUrl(o.to))
    throw new UsageError('--to must be a postgres:// URL', 'use --to postgres://USER@HOST:PORT/DB');
  const src = new SqliteSource(file);
  let target: Awaited<ReturnType<typeof openPgImport>>;
  try {
    target = await openPgImport(o.to);
  } catch (err) {
    src.close();
    throw new UnreachableError(
      `cannot open ${redactDbUrl(o.to)}: ${(err as Error).message}`,
      'check that PostgreSQL runs there and the database exists (createdb NAME)',
    );
  }
  try {
    const sourceSize = src.size();
    const targetSize = await target.size();
    const checkpoints = src.checkpoints();
    const plan: MigratePlan = {
      source: file,
      target: redactDbUrl(o.to),
      source_size: sourceSize,
      target_size: targetSize,
      to_copy: Math.max(0, sourceSize - targetSize),
      checkpoints: checkpoints.length,
    };
    if (targetSize > sourceSize)
      throw new UsageError(
        `${plan.target} already holds ${targetSize} events, more than ${file} (${sourceSize})`,
        'migrate into an empty database',
      );
    if (targetSize > 0 && !(await target.store.rootAt(targetSize)).equals(rootHash(src, targetSize)))
      throw new UsageError(
        `${plan.target} holds ${targetSize} events that are not the first ${targetSize} of ${file}`,
        'migrate into an empty database',
      );
    const t0 = now();
    let copied = 0;
    let checkpointsCopied = 0;
    if (!o.dryRun) {
      o.onProgress?.(targetSize, sourceSize);
      for (let from = targetSize; from < sourceSize; ) {
        if (o.signal?.aborted)
          throw new InterruptedError(
            `interrupted after ${from} of ${sourceSize} events; run it again to resume`,
          );
        const to = Math.min(sourceSize, from + o.batch);
        await target.writeChunk(from, to, src.chunk(from, to));
        copied += to - from;
        from = to;
        o.onProgress?.(from, sourceSize);
      }
      checkpointsCopied = await target.copyCheckpoints(checkpoints);
    }
    const elapsed = now() - t0;
    const sourceRoot = rootHash(src, sourceSize);
    const head = await target.store.treeHead();
    const targetRoot = o.dryRun ? undefined : head.root;
    return {
      ...plan,
      dry_run: o.dryRun,
      ok: o.dryRun || (head.size === sourceSize && sourceRoot.equals(head.root)),
      copied,
      checkpoints_copied: checkpointsCopied,
      tree_size: head.size,
      source_root: sourceRoot.toString('base64'),
      target_root: targetRoot?.toString('base64') ?? '',
      elapsed_ms: Math.round(elapsed),
      events_per_second: elapsed > 0 ? Math.round((copied * 1000) / elapsed) : 0,
    };
  } finally {
    src.close();
    await target.close();
  }
}
