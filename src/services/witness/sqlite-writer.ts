// The SQLite store's writes on a worker thread (issue 24.4).
//
// Why: profiled with `node --cpu-prof` under the batched-ingest bench, about 60 % of the witness
// process was better-sqlite3 inserting rows and committing (B-tree work and the fsync of
// synchronous=FULL), all on the thread that also parses HTTP bodies and canonicalises events. Here
// the thread that plans an append (idempotency keys, ids, canonical bodies, leaf and Merkle hashes)
// hands finished rows to a worker that only runs the INSERTs and the COMMIT, so the next requests
// are parsed and planned on one core while the last group is written on the other.
//
// Nothing about durability changes: the store resolves an append only when the worker reports its
// transaction committed, and a failed transaction rejects every append in it, as before.
// The worker is a few lines of plain better-sqlite3 (no project imports), so it runs the same from
// the compiled CLI and from the TypeScript sources the tests load; the statements come from the
// store, which owns the schema.
import { replyError, SqliteThread, type ThreadReply } from './sqlite-thread.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
const insert = db.prepare(workerData.insertSql);
const insertNode = db.prepare('INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)');
const saveCheckpoint = db.prepare('INSERT OR REPLACE INTO checkpoints (size, root, time, note) VALUES (?, ?, ?, ?)');
const width = workerData.width;
const write = db.transaction((g) => {
  const e = g.events;
  for (let o = 0; o < e.length; o += width) {
    insert.run(e[o], e[o + 1], e[o + 2], e[o + 3], e[o + 4], e[o + 5], e[o + 6], e[o + 7], e[o + 8], e[o + 9], e[o + 10], e[o + 11], e[o + 12]);
  }
  const h = Buffer.from(g.hashes.buffer, g.hashes.byteOffset, g.hashes.byteLength);
  for (let i = 0; i < g.levels.length; i++) insertNode.run(g.levels[i], g.indexes[i], h.subarray(i * 32, i * 32 + 32));
  for (const c of g.checkpoints) saveCheckpoint.run(c.size, c.root, c.time, c.note);
});
parentPort.on('message', (g) => {
  if (g === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    write(g);
    parentPort.postMessage({ seq: g.seq });
  } catch (err) {
    parentPort.postMessage({ seq: g.seq, error: String(err && err.message), code: err && err.code });
  }
});
`;

/** Values per event row in `WriteGroup.events`: the columns of the store's insert, in order. */
export const EVENT_ROW_WIDTH = 13;

/** One transaction's rows, packed so that posting them copies a few arrays, not thousands of objects. */
export interface WriteGroup {
  /** EVENT_ROW_WIDTH values per event, in the order of the insert statement's placeholders. */
  events: unknown[];
  /** Merkle nodes: level, index, and 32 bytes each of `hashes`. */
  levels: number[];
  indexes: number[];
  hashes: Uint8Array;
  checkpoints: { size: number; root: Uint8Array; time: string; note: string }[];
}

export class SqliteWriter {
  private readonly thread: SqliteThread<ThreadReply>;

  /** `insertSql` inserts one event row with EVENT_ROW_WIDTH placeholders. */
  constructor(file: string, insertSql: string) {
    this.thread = new SqliteThread(WORKER_SOURCE, { file, insertSql, width: EVENT_ROW_WIDTH }, 'writer');
  }

  /** Resolves once the group is committed; rejects (and nothing of it is stored) if it is not. */
  async write(group: WriteGroup): Promise<void> {
    const r = await this.thread.request({ ...group });
    if (r.error !== undefined) throw replyError(r);
  }

  /** Closes the worker's connection after the writes already sent. */
  close(): Promise<void> {
    return this.thread.close();
  }
}
