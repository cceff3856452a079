// Request/reply over one worker thread holding its own database connection: the plumbing shared by
// the SQLite writer thread (sqlite-writer.ts) and the scan threads (sqlite-scan.ts, pg-scan.ts).
//
// The worker source is eval'd CommonJS with no project imports, so it runs the same from the
// compiled CLI and from the TypeScript sources the tests load; it answers each `{ seq, … }` with
// `{ seq, … }` and closes its connection on 'close'. The thread is referenced only while a reply is
// awaited: an idle store does not keep a process alive, a process awaiting a commit does not exit.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

import { QueryTimeoutError } from './store.js';

/**
 * How long past a query's deadline a scan thread's answer is awaited: the thread checks the deadline
 * as it goes, but at nice 19 it may get no CPU to say so, and the answer must not wait for it.
 */
const SCAN_GRACE_MS = 10;

/**
 * The start of a scan thread's source (sqlite-scan.ts, pg-scan.ts), after `workerData` is in scope.
 * Linux: the thread's nice value, 19, so that ingest, proofs and answers always win the CPU (not
 * SCHED_IDLE: a thread starved outright would hold its database snapshot until it ran). `now()`:
 * milliseconds on process.hrtime, the one monotonic clock every thread reads (performance.timeOrigin
 * is each thread's own wall-clock sample), which scanRequest's deadline is on.
 */
export const SCAN_THREAD_PRELUDE = `
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  require('node:os').setPriority(tid, 19);
} catch {}
const hrtimeOffset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
const now = () => performance.now() + hrtimeOffset;
`;

export interface ThreadReply {
  seq: number;
  /** Set when the request failed: the error's message and the database's code. */
  error?: string;
  code?: string;
}

export class WorkerThread<R extends ThreadReply> {
  private readonly worker: Worker;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (r: R) => void; reject: (e: unknown) => void }>();
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  constructor(source: string, workerData: Record<string, unknown>, name: string) {
    const require = createRequire(import.meta.url);
    this.worker = new Worker(source, {
      eval: true,
      workerData: {
        ...workerData,
        sqlite: require.resolve('better-sqlite3'),
        pg: require.resolve('pg'),
        re2js: require.resolve('re2js'),
      },
    });
    this.worker.unref();
    this.worker.on('message', (m: R) => {
      const w = this.waiting.get(m.seq);
      if (!w) return;
      this.waiting.delete(m.seq);
      if (this.waiting.size === 0) this.worker.unref();
      w.resolve(m);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', () => {
        this.fail(new Error(`the witness ${name} thread stopped`));
        resolve();
      }),
    );
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** True once the thread has stopped or failed: every request now rejects, so make a new one. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /**
   * The worker's reply to `message` (`transfer` moves those buffers to it); rejects if the thread is
   * gone, or with `onTimeout()` if no reply came within `timeoutMs` (a late reply is then dropped).
   */
  request(
    message: Record<string, unknown>,
    transfer: ArrayBuffer[] = [],
    timeout?: { ms: number; error: () => Error },
  ): Promise<R> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = timeout
        ? setTimeout(
            () => {
              this.waiting.delete(seq);
              if (this.waiting.size === 0) this.worker.unref();
              reject(timeout.error());
            },
            Math.max(0, timeout.ms),
          )
        : undefined;
      const done = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      this.waiting.set(seq, { resolve: (r) => done(() => resolve(r)), reject: (e) => done(() => reject(e)) });
      this.worker.ref();
      this.worker.postMessage({ ...message, seq }, transfer);
    });
  }

  /** Closes the worker's connection after the requests already sent. */
  async close(): Promise<void> {
    if (!this.failure) {
      this.worker.ref();
      this.worker.postMessage('close');
    }
    await this.exited;
  }
}

/**
 * A scan thread's reply to `message`, with `budgetMs` left before the query's deadline; the deadline
 * travels as `deadline` on process.hrtime (SCAN_THREAD_PRELUDE's now()), so time a query spends
 * queued behind another counts against it, as it does in-process. QueryTimeoutError when the thread
 * answers `timeout`, or has not answered SCAN_GRACE_MS past the deadline.
 */
export async function scanRequest<R extends ThreadReply & { timeout?: boolean }>(
  thread: WorkerThread<R>,
  message: Record<string, unknown>,
  budgetMs: number,
): Promise<R> {
  const expired = () => new QueryTimeoutError('query deadline exceeded');
  if (budgetMs <= 0) throw expired();
  const deadline = Number(process.hrtime.bigint()) / 1e6 + budgetMs;
  const r = await thread.request({ ...message, deadline }, [], {
    ms: budgetMs + SCAN_GRACE_MS,
    error: expired,
  });
  if (r.timeout) throw expired();
  return r;
}

/** The Error a reply's `error` describes, with its database code. */
export function replyError(r: ThreadReply): Error {
  return Object.assign(new Error(r.error), { code: r.code });
}
