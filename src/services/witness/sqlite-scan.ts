// Regex scans of the SQLite store on a worker thread (issue 24.3).
//
// Why: a regex condition makes SQLite hand every candidate row to re2js. In-process, such a scan ran
// in 2 ms slices between other work, but 100 hostile queries at once still filled the event loop
// with slices, and every /api/log answer waited for the slice in progress: writers' p99 rose 3-20×
// during such a storm. Here the scan runs on its own thread with its own read-only connection (WAL
// lets it read while the writer thread commits), so the main thread only parses requests, plans
// appends and sends answers. On Linux the thread runs at nice 19: a storm of scans takes the CPU
// only when ingest and answers do not want it (they are what a storm must not slow down; a scan
// that gets too little is answered 503 at its deadline, by the main thread, on time).
//
// Same answers: the statement is the one the in-process path runs (same conditions, ORDER BY
// ts_ms, id and LIMIT), the regex is re2js's test() as there, and the deadline is the query's:
// ifw_tick throws once it has passed and the query is answered 503 query_timeout. A snapshot is
// one statement here, where the in-process path reads in slices, each seeing the latest commit.
// The worker is a few lines of plain better-sqlite3 and re2js (no project imports), so it runs the
// same from the compiled CLI and from the TypeScript sources the tests load.
import type { ScanRow } from './store.js';
import {
  replyError,
  SCAN_THREAD_PRELUDE,
  scanRequest,
  type ThreadReply,
  WorkerThread,
} from './worker-thread.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const { RE2JS } = require(workerData.re2js);
${SCAN_THREAD_PRELUDE}
const db = new Database(workerData.file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
const compiled = new Map();
db.function('ifw_regexp', { deterministic: true }, (pattern, value) => {
  if (typeof value !== 'string' || typeof pattern !== 'string') return 0;
  let re = compiled.get(pattern);
  if (!re) {
    if (compiled.size >= 500) compiled.clear();
    re = RE2JS.compile(pattern);
    compiled.set(pattern, re);
  }
  return re.test(value) ? 1 : 0;
});
let deadline = Infinity;
class Timeout extends Error {}
db.function('ifw_tick', { deterministic: false, varargs: true }, () => {
  if (now() > deadline) throw new Timeout('query deadline exceeded');
  return 1;
});
const statements = new Map();
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  let stmt = statements.get(m.sql);
  try {
    if (!stmt) {
      if (statements.size > 200) statements.clear();
      stmt = db.prepare(m.sql);
      statements.set(m.sql, stmt);
    }
    deadline = m.deadline;
    parentPort.postMessage({ seq: m.seq, rows: stmt.all(...m.params) });
  } catch (err) {
    const timeout = err instanceof Timeout || /query deadline exceeded/.test(String(err && err.message));
    parentPort.postMessage({ seq: m.seq, timeout, error: String(err && err.message), code: err && err.code });
  } finally {
    deadline = Infinity;
  }
});
`;

export class SqliteScanThread {
  private readonly thread: WorkerThread<ThreadReply & { rows?: ScanRow[]; timeout?: boolean }>;

  constructor(file: string) {
    this.thread = new WorkerThread(WORKER_SOURCE, { file }, 'scan');
  }

  /** Runs `sql` (which calls ifw_tick per candidate row) with `budgetMs` left before its deadline. */
  async all(sql: string, params: unknown[], budgetMs: number): Promise<ScanRow[]> {
    const r = await scanRequest(this.thread, { sql, params }, budgetMs);
    if (r.error !== undefined || !r.rows) throw replyError(r);
    return r.rows;
  }

  /** True once the thread has died: the store makes a new one. */
  get failed(): boolean {
    return this.thread.failed;
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}
