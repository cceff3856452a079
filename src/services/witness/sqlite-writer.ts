// The SQLite store's writes on a worker thread (issue 24.4).
//
// Why: profiled with `node --cpu-prof` under the batched-ingest bench, about 60 % of the witness
// process was better-sqlite3 inserting rows and committing (B-tree work and the fsync of
// synchronous=FULL), all on the thread that also parses HTTP bodies and canonicalises events; then,
// with the writes moved, hashing was the largest cost left there. Here the thread that plans an
// append (idempotency keys, ids, canonical bodies) hands packed rows to a worker that hashes the
// leaves, adds them to the Merkle tree, runs the INSERTs and the COMMIT, so the next requests are parsed and
// planned on one core while the last group is written on the other.
//
// Nothing about durability changes: the store resolves an append only when the worker reports its
// transaction committed, and a failed transaction rejects every append in it, as before.
// The worker is a few lines of plain better-sqlite3 (no project imports), so it runs the same from
// the compiled CLI and from the TypeScript sources the tests load; the statements come from the
// store, which owns the schema.
import type { Hash } from '../../crypto/merkle.js';
import { replyError, type ThreadReply, WorkerThread } from './worker-thread.js';

// The worker keeps the tree's compact range (the roots of its perfect subtrees) as
// crypto/merkle.ts's CompactRange does, over the same RFC 6962 hashes: it stores each leaf hash
// (of the bytes the planning thread packed: the hashes moved here once that thread was the busier
// one, along with a string and a Buffer per event it made for them) and the nodes it completes from
// FIRST_STORED_LEVEL up, and answers with the committed size and root. After a failed transaction it reloads the range from what is stored.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { hash } = require('node:crypto');
const Database = require(workerData.sqlite);
const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
const { width, firstStoredLevel } = workerData;
// Rows go in CHUNK at a time, one statement each: a run() per row (and per leaf) was a good part of
// this thread's CPU, in binding and stepping overhead rather than in SQLite's B-trees.
const CHUNK = 64;
const rowSql = '(' + Array(width).fill('?').join(', ') + ')';
const insert = db.prepare(workerData.insertHead + ' ' + rowSql);
const insertChunk = db.prepare(workerData.insertHead + ' ' + Array(CHUNK).fill(rowSql).join(', '));
const insertLeafChunk = db.prepare('INSERT INTO nodes (level, idx, hash) VALUES ' + Array(CHUNK).fill('(0, ?, ?)').join(', '));
const insertNode = db.prepare('INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)');
const saveCheckpoint = db.prepare('INSERT OR REPLACE INTO checkpoints (size, root, time, note) VALUES (?, ?, ?, ?)');
const storedNode = db.prepare('SELECT hash FROM nodes WHERE level = ? AND idx = ?').pluck();
const storedLeaves = db.prepare('SELECT hash FROM nodes WHERE level = 0 AND idx >= ? AND idx < ? ORDER BY idx').pluck();
const leafCount = db.prepare('SELECT COUNT(*) FROM nodes WHERE level = 0').pluck();
const NODE = Buffer.from([1]);
const EMPTY = hash('sha256', '', 'buffer');
// A 'binary' (latin1) digest copied into a pooled Buffer: cheaper than a 'buffer' digest (crypto/merkle.ts).
const nodeHash = (l, r) => Buffer.from(hash('sha256', Buffer.concat([NODE, l, r]), 'binary'), 'binary');
function node(level, idx) {
  const h = storedNode.get(level, idx);
  if (h) return h;
  let row = storedLeaves.all(idx * 2 ** level, (idx + 1) * 2 ** level);
  if (level >= firstStoredLevel || row.length !== 2 ** level) throw new Error('merkle node (' + level + ', ' + idx + ') is missing');
  while (row.length > 1) {
    const up = [];
    for (let i = 0; i < row.length; i += 2) up.push(nodeHash(row[i], row[i + 1]));
    row = up;
  }
  return row[0];
}
let stack = [];
let size = 0;
function load() {
  size = leafCount.get();
  stack = [];
  let start = 0;
  for (let level = 31; level >= 0; level--) {
    const w = 2 ** level;
    if (size - start >= w) {
      stack.push({ level, hash: node(level, start / w) });
      start += w;
    }
  }
}
function root() {
  if (stack.length === 0) return EMPTY;
  let h = stack[stack.length - 1].hash;
  for (let i = stack.length - 2; i >= 0; i--) h = nodeHash(stack[i].hash, h);
  return h;
}
load();
const write = db.transaction((g) => {
  const e = g.events;
  const count = e.length / width;
  // Each body is stored as text and hashed as its leaf from the bytes the planning thread packed:
  // a 0 byte, then the body.
  const bodies = Buffer.from(g.bodies.buffer, g.bodies.byteOffset, g.bodies.byteLength);
  const leaves = new Array(count);
  for (let i = 0, start = 0; i < count; i++) {
    const id = e[i * width];
    if (id !== size + 1 + i) throw new Error('event ' + id + ' planned out of order (the log holds ' + (size + i) + ')');
    const end = g.ends[i];
    e[i * width + 2] = bodies.utf8Slice(start + 1, end);
    leaves[i] = Buffer.from(hash('sha256', bodies.subarray(start, end), 'binary'), 'binary');
    start = end;
  }
  let i = 0;
  for (; i + CHUNK <= count; i += CHUNK) insertChunk.run(e.slice(i * width, (i + CHUNK) * width));
  for (; i < count; i++) insert.run(e.slice(i * width, (i + 1) * width));
  const leafRows = [];
  for (let n = 0; n < count; n++) {
    let h = leaves[n];
    leafRows.push(size, h);
    if (leafRows.length === 2 * CHUNK) {
      insertLeafChunk.run(leafRows);
      leafRows.length = 0;
    }
    let level = 0;
    let index = size;
    while (stack.length > 0 && stack[stack.length - 1].level === level) {
      h = nodeHash(stack.pop().hash, h);
      level += 1;
      index = Math.floor(index / 2);
      if (level >= firstStoredLevel) insertNode.run(level, index, h);
    }
    stack.push({ level, hash: h });
    size += 1;
  }
  for (let k = 0; k < leafRows.length; k += 2) insertNode.run(0, leafRows[k], leafRows[k + 1]);
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
    // A copy: a pooled Buffer would be posted with its whole pool.
    parentPort.postMessage({ seq: g.seq, size, root: new Uint8Array(root()) });
  } catch (err) {
    try {
      load();
    } catch {}
    parentPort.postMessage({ seq: g.seq, error: String(err && err.message), code: err && err.code });
  }
});
`;

/** Values per event row in `WriteGroup.events`: the columns of the store's insert, in order. */
export const EVENT_ROW_WIDTH = 13;

/** One transaction's rows, packed so that posting them copies one array and one buffer, not thousands of objects. */
export interface WriteGroup {
  /** EVENT_ROW_WIDTH values per event, in the order of the insert statement's placeholders; the body's is filled in by the writer. */
  events: unknown[];
  /** Each event's leaf input (a 0 byte, then its body in UTF-8), in the same order; transferred. */
  bodies: Uint8Array;
  /** Where each event's leaf input ends in `bodies`. */
  ends: number[];
  checkpoints: { size: number; root: Uint8Array; time: string; note: string }[];
}

export class SqliteWriter {
  private readonly thread: WorkerThread<ThreadReply & { size?: number; root?: Uint8Array }>;

  /**
   * `insertHead` is an INSERT of the EVENT_ROW_WIDTH event columns up to its VALUES keyword (the
   * worker adds one or more rows of placeholders); interior Merkle nodes are stored from
   * `firstStoredLevel` up.
   */
  constructor(file: string, insertHead: string, firstStoredLevel: number) {
    this.thread = new WorkerThread(
      WORKER_SOURCE,
      { file, insertHead, width: EVENT_ROW_WIDTH, firstStoredLevel },
      'writer',
    );
  }

  /**
   * The tree head once the group is committed; rejects (and nothing of it is stored) if it is not.
   * Event ids must follow on from the log's size.
   */
  async write(group: WriteGroup): Promise<{ size: number; root: Hash }> {
    const r = await this.thread.request({ ...group }, [group.bodies.buffer as ArrayBuffer]);
    if (r.error !== undefined || r.size === undefined || !r.root) throw replyError(r);
    return { size: r.size, root: Buffer.from(r.root.buffer, r.root.byteOffset, r.root.byteLength) };
  }

  /** Closes the worker's connection after the writes already sent. */
  close(): Promise<void> {
    return this.thread.close();
  }
}
