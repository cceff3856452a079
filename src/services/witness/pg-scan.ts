// Regex queries of the PostgreSQL store on a worker thread (issue 24.3).
//
// Why: PostgreSQL prefilters a regex condition (pg-sql.ts), but every candidate row still goes to
// re2js, and in-process that ran in 2 ms slices on the main thread: 100 hostile queries at once
// filled the event loop with slices, and every /api/log answer waited for the slice in progress
// (writers' p99 rose about 8× during such a storm). Here the pages are fetched and confirmed on a
// thread with its own connection, so the main thread only parses requests, runs appends and sends
// answers. On Linux the thread runs at nice 19: a storm of scans takes the CPU only when ingest and
// answers do not want it; a scan that gets too little is answered 503 at its deadline, on time.
//
// Same answers: the statements are the ones the in-process path runs (same prefilter, ORDER BY
// ts_ms, id, keyset pages of REGEX_PAGE rows), the regex is re2js's test() on the value at the
// path, as in matchesAll, and the deadline is the query's: PostgreSQL's statement_timeout stops a
// slow page, the thread stops confirming at the deadline, and the main thread stops waiting a
// moment after it whatever the thread is doing. One request runs at a time, so each page's
// statement_timeout is its own. A thread that dies is replaced by the next query (pg-store.ts).
// The worker is plain node-postgres and re2js (no project imports), so it runs the same from the
// compiled CLI and from the TypeScript sources the tests load.

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
${SCAN_THREAD_PRELUDE}
const pg = require(workerData.pg);
const { RE2JS } = require(workerData.re2js);
class Timeout extends Error {}
let client;
let connecting;
let closing = false;
function connection() {
  if (client) return Promise.resolve(client);
  if (closing) return Promise.reject(new Error('the scan thread is closing'));
  connecting ??= (async () => {
    // keepAlive: a connection whose server vanished (a failover, a NAT that dropped it) is noticed.
    const c = new pg.Client({ connectionString: workerData.url, connectionTimeoutMillis: workerData.connectTimeoutMs, keepAlive: true });
    // A connection the server drops must not end the thread: the next request opens another.
    c.on('error', () => { if (client === c) client = undefined; });
    await c.connect();
    client = c;
    return c;
  })().finally(() => { connecting = undefined; });
  return connecting;
}
// Connected before the first query, so a storm does not wait for it (a failure here is retried then).
connection().catch(() => {});
const compiled = new Map();
function regex(pattern) {
  let re = compiled.get(pattern);
  if (!re) {
    if (compiled.size >= 500) compiled.clear();
    re = RE2JS.compile(pattern);
    compiled.set(pattern, re);
  }
  return re;
}
function valueAt(doc, path) {
  let v = doc;
  for (const p of path) {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = v[p];
  }
  return v;
}
function matches(body, regexes) {
  const doc = JSON.parse(body);
  return regexes.every(({ path, re }) => {
    const v = valueAt(doc, path);
    return typeof v === 'string' && re.test(v);
  });
}
async function scan(m) {
  const regexes = m.regexes.map((r) => ({ path: r.path, re: regex(r.pattern) }));
  if (now() >= m.deadline) throw new Timeout();
  const c = await connection();
  const out = [];
  let after = m.after;
  for (let pages = 0; pages < 1e6; pages++) {
    const left = m.deadline - now();
    if (left <= 0) throw new Timeout();
    await c.query('SELECT set_config($1, $2, false)', ['statement_timeout', String(Math.ceil(left))]);
    // statement_timeout is the server's to enforce; a server that is gone answers nothing, so the
    // client stops waiting too (a moment later, so that PostgreSQL's own 57014 comes first).
    const r = await c.query({
      text: after ? m.sqlAfter : m.sqlFirst,
      values: after ? [...m.params, after.ts, after.id, m.page] : [...m.params, m.page],
      query_timeout: Math.ceil(left) + 1000,
    });
    for (let i = 0; i < r.rows.length; i++) {
      const row = r.rows[i];
      if ((i & 63) === 0 && now() > m.deadline) throw new Timeout();
      if (!matches(row.body, regexes)) continue;
      out.push({ id: Number(row.id), ts_ms: Number(row.ts_ms), body: row.body });
      if (out.length > m.limit) return out;
    }
    const last = r.rows[r.rows.length - 1];
    if (r.rows.length < m.page || !last) return out;
    after = { ts: last.ts_ms, id: last.id };
  }
  return out;
}
const isTimeout = (err) => err instanceof Timeout || (err && err.code === '57014');
function drop() {
  if (!client) return;
  const c = client;
  client = undefined;
  c.end().catch(() => {});
}
// A connection the server dropped since the last request (a restart, pg_terminate_backend: codes
// 57P.., 08... or none) fails the first statement sent on it; the query is then run once more on a
// new connection rather than answered 500. Any other failure may have left the connection in doubt,
// so it is not reused either.
async function scanRetrying(m) {
  const reused = client !== undefined;
  try {
    return await scan(m);
  } catch (err) {
    if (isTimeout(err)) throw err;
    drop();
    if (now() >= m.deadline) throw new Timeout();
    const code = err && err.code;
    if (!reused || (code !== undefined && !/^(08|57P)/.test(code))) throw err;
    return await scan(m);
  }
}
let chain = Promise.resolve();
parentPort.on('message', (m) => {
  if (m === 'close') {
    closing = true;
    chain = chain.then(async () => {
      // A connection still being opened (the one started with the thread) would keep it alive.
      await connecting?.catch(() => {});
      await client?.end().catch(() => {});
      parentPort.close();
    });
    return;
  }
  chain = chain.then(async () => {
    try {
      parentPort.postMessage({ seq: m.seq, rows: await scanRetrying(m) });
    } catch (err) {
      parentPort.postMessage({ seq: m.seq, timeout: isTimeout(err), error: String(err && err.message), code: err && err.code });
    }
  });
});
`;

export interface PgScan {
  /** SELECT … WHERE <conditions> ORDER BY ts_ms, id LIMIT $n+1, with `params` as $1…$n. */
  sqlFirst: string;
  /** The same with `(ts_ms, id) > ($n+1, $n+2)` and LIMIT $n+3: the pages after a row. */
  sqlAfter: string;
  params: unknown[];
  after: { ts: number; id: number } | undefined;
  regexes: { path: string[]; pattern: string }[];
  /** Rows wanted: the scan stops once it has limit + 1 matches (the last one says there are more). */
  limit: number;
  page: number;
}

export class PgScanThread {
  private readonly thread: WorkerThread<ThreadReply & { rows?: ScanRow[]; timeout?: boolean }>;

  constructor(url: string, connectTimeoutMs: number) {
    this.thread = new WorkerThread(WORKER_SOURCE, { url, connectTimeoutMs }, 'PostgreSQL scan');
  }

  get failed(): boolean {
    return this.thread.failed;
  }

  /** Up to limit + 1 matching rows, oldest first, with `budgetMs` left before the query's deadline. */
  async scan(s: PgScan, budgetMs: number): Promise<ScanRow[]> {
    const r = await scanRequest(this.thread, { ...s }, budgetMs);
    if (r.error !== undefined || !r.rows) throw replyError(r);
    return r.rows;
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}
