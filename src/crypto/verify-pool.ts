// Ed25519 verification on worker threads, for receivers under load.
//
// Why (issue 24, profiled with `node --cpu-prof` on the agent bench): on one pair streaming signed
// ~1 KB messages, node:crypto's verify was the largest single cost of the process (about a quarter
// of all samples, three times signing) and it ran on the thread that also runs werift's SCTP, DTLS
// and ICE. Moving it to another core leaves that thread with werift, signing and cheap checks.
//
// The policy is "inline when idle, pool when busy": a receiver verifies on its own thread while
// nothing waits (no postMessage hop, so an idle ping/pong keeps its round-trip time), and hands the
// signature to the pool once a message arrives while another is still in flight, or a second one
// arrives in the same event-loop turn (the sign that the thread is behind). Jobs are gathered (up to
// MIN_BATCH, or GATHER_MS) and go out as one packed, transferred buffer per idle worker, one batch in
// flight per worker, and come back as one verdict per job.
//
// Only the Ed25519 verify itself moves: parsing, shape, sender/recipient and timestamp checks, the
// canonical form (JCS) and the replay cache stay with the caller (MessageVerifier.precheck/finish),
// so a message is accepted or rejected for exactly the reasons, and in the order, it was before.
// The worker is a few lines of plain node:crypto (no project imports), so it runs the same from the
// compiled CLI and from the TypeScript sources the tests load.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { verifySignature } from './ed25519.js';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const keys = new Map();
function keyOf(raw) {
  const id = raw.toString('base64');
  let k = keys.get(id);
  if (!k) {
    if (keys.size >= 10000) keys.delete(keys.keys().next().value);
    k = createPublicKey({ key: Buffer.concat([SPKI, raw]), format: 'der', type: 'spki' });
    keys.set(id, k);
  }
  return k;
}
parentPort.on('message', ({ batch, count, buf }) => {
  const b = Buffer.from(buf);
  const out = new Uint8Array(count);
  let at = 0;
  let lastRaw;
  let lastKey;
  for (let i = 0; i < count; i++) {
    const raw = b.subarray(at, at + 32);
    const sig = b.subarray(at + 32, at + 96);
    const len = b.readUInt32LE(at + 96);
    const data = b.subarray(at + 100, at + 100 + len);
    at += 100 + len;
    if (!lastRaw || !lastRaw.equals(raw)) { lastRaw = raw; lastKey = keyOf(raw); }
    try { out[i] = verify(null, data, lastKey, sig) ? 1 : 0; } catch { out[i] = 0; }
  }
  parentPort.postMessage({ batch, out }, [out.buffer]);
});
`;

/**
 * Jobs a batch waits for, at most GATHER_MS: a postMessage round trip costs the receiving thread tens
 * of microseconds, about what a verification costs, so single-job batches would save nothing.
 */
const MIN_BATCH = 16;
const GATHER_MS = 1;

interface Job {
  publicKey: Uint8Array;
  data: Uint8Array;
  signature: Uint8Array;
  done: (holds: boolean) => void;
}

interface Lane {
  worker: Worker;
  /** Batches sent and not answered, by batch number. */
  inFlight: Map<number, Job[]>;
  jobs: number;
}

export interface VerifyPoolOptions {
  /** Worker threads; 0 verifies everything inline. Default: the cores but one, 1 to 4. */
  workers?: number;
}

export class VerifyPool {
  private readonly size: number;
  private lanes: Lane[] | undefined;
  private pending: Job[] = [];
  private flushScheduled = false;
  private nextBatch = 0;
  private broken = false;
  /** A worker has started and can take jobs. */
  private online = false;
  /** Jobs handed to workers, and verified inline: for tests and the benchmark's report. */
  readonly counts = { pooled: 0, inline: 0, batches: 0 };

  constructor(opts: VerifyPoolOptions = {}) {
    this.size = opts.workers ?? Math.max(1, Math.min(4, availableParallelism() - 1));
  }

  /** Jobs submitted and not yet answered. */
  get busy(): number {
    let n = this.pending.length;
    for (const l of this.lanes ?? []) n += l.jobs;
    return n;
  }

  /**
   * Whether the caller should submit() rather than verify inline: true once work is queued or in
   * flight, or the caller already verified a signature inline in this event-loop turn. Both counts
   * are the caller's (one link): `queued` its backlog held for ordering, which must not be overtaken.
   * Per link, not per process: a ping verified inline must not send the pong (another link, same
   * turn when both agents share a process) to the pool and its gathering wait.
   */
  shouldOffload(queued: number, inlineThisTurn: number): boolean {
    if (this.size === 0 || this.broken) return false;
    if (queued > 0) return true;
    if (this.busy === 0 && inlineThisTurn === 0) return false;
    // Busy, but a worker thread takes tens of milliseconds to start: messages stay inline until one
    // is up, so the first burst never waits on a thread starting (it showed as an RTT p99 spike).
    if (!this.online) this.ensureLanes();
    return this.online;
  }

  /** Starts the workers now; resolves once one can take jobs (false: none could start). */
  async warm(): Promise<boolean> {
    if (this.size === 0) return false;
    const lanes = this.ensureLanes();
    if (this.online || lanes.length === 0) return this.online;
    await Promise.race(lanes.map((l) => new Promise((r) => l.worker.once('online', r))));
    return this.online;
  }

  /** Verifies on this thread (counted). */
  verifyInline(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
    this.counts.inline += 1;
    return verifySignature(publicKey, data, signature);
  }

  /** Queues one verification; `done` runs later (never synchronously) with the verdict. */
  submit(
    publicKey: Uint8Array,
    data: Uint8Array,
    signature: Uint8Array,
    done: (holds: boolean) => void,
  ): void {
    this.counts.pooled += 1;
    this.pending.push({ publicKey, data, signature, done });
    if (this.pending.length >= MIN_BATCH) this.flush();
    else this.flushSoon();
  }

  /** A short wait gathers a batch: a worker faster than the arrivals would otherwise get them one by one. */
  private flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setTimeout(() => {
      this.flushScheduled = false;
      this.flush();
    }, GATHER_MS);
  }

  /** Stops the workers; anything in flight is verified inline. */
  async close(): Promise<void> {
    const lanes = this.lanes ?? [];
    this.lanes = undefined;
    this.broken = true;
    for (const l of lanes) this.failLane(l);
    this.flush();
    await Promise.all(lanes.map((l) => l.worker.terminate()));
  }

  /**
   * Sends what is pending to the lanes with nothing in flight, split evenly; a busy lane gets its
   * next batch when it answers. One batch in flight per lane makes the batches as large as the
   * worker is slow: postMessage was the largest cost left on the receiving thread when every turn's
   * few messages went out on their own.
   */
  private flush(): void {
    if (this.pending.length === 0) return;
    const lanes = this.broken ? [] : this.ensureLanes();
    if (lanes.length === 0) {
      const jobs = this.pending;
      this.pending = [];
      for (const j of jobs) j.done(verifySignature(j.publicKey, j.data, j.signature));
      return;
    }
    const idle = lanes.filter((l) => l.jobs === 0);
    if (idle.length === 0) return;
    const jobs = this.pending;
    this.pending = [];
    const take = Math.ceil(jobs.length / idle.length);
    for (let i = 0, lane = 0; i < jobs.length; i += take, lane++)
      this.send(idle[lane]!, jobs.slice(i, i + take));
  }

  private send(lane: Lane, jobs: Job[]): void {
    let bytes = 0;
    for (const j of jobs) bytes += 100 + j.data.length;
    const buf = Buffer.allocUnsafeSlow(bytes);
    let at = 0;
    for (const j of jobs) {
      buf.set(j.publicKey, at);
      buf.set(j.signature, at + 32);
      buf.writeUInt32LE(j.data.length, at + 96);
      buf.set(j.data, at + 100);
      at += 100 + j.data.length;
    }
    const batch = this.nextBatch++;
    this.counts.batches += 1;
    lane.inFlight.set(batch, jobs);
    lane.jobs += jobs.length;
    lane.worker.postMessage({ batch, count: jobs.length, buf: buf.buffer }, [buf.buffer]);
  }

  private ensureLanes(): Lane[] {
    if (this.lanes) return this.lanes;
    const lanes: Lane[] = [];
    try {
      for (let i = 0; i < this.size; i++) {
        const worker = new Worker(WORKER_SOURCE, { eval: true, name: `ifmesh-verify-${i}` });
        // Verification must never keep a process alive (an agent stops, the CLI exits).
        worker.unref();
        const lane: Lane = { worker, inFlight: new Map(), jobs: 0 };
        worker.once('online', () => {
          this.online = true;
        });
        worker.on('message', (m: { batch: number; out: Uint8Array }) => this.answer(lane, m));
        worker.on('error', () => this.laneDied(lane));
        worker.on('exit', () => this.laneDied(lane));
        lanes.push(lane);
      }
    } catch {
      // No worker threads here (resource limits): verify inline from now on.
      this.broken = true;
      for (const l of lanes) void l.worker.terminate();
      return [];
    }
    this.lanes = lanes;
    return lanes;
  }

  private answer(lane: Lane, m: { batch: number; out: Uint8Array }): void {
    const jobs = lane.inFlight.get(m.batch);
    if (!jobs) return;
    lane.inFlight.delete(m.batch);
    lane.jobs -= jobs.length;
    for (let i = 0; i < jobs.length; i++) jobs[i]!.done(m.out[i] === 1);
    if (this.pending.length >= MIN_BATCH) this.flush();
    else if (this.pending.length > 0) this.flushSoon();
  }

  /** A worker that died takes no answers with it: its jobs are verified here, and the pool goes inline. */
  private laneDied(lane: Lane): void {
    if (this.lanes?.includes(lane)) this.broken = true;
    this.failLane(lane);
    this.flush();
  }

  private failLane(lane: Lane): void {
    const batches = [...lane.inFlight.values()];
    lane.inFlight.clear();
    lane.jobs = 0;
    for (const jobs of batches)
      for (const j of jobs) j.done(verifySignature(j.publicKey, j.data, j.signature));
  }
}

let shared: VerifyPool | undefined;

/**
 * The process's pool, shared by every agent in it (a swarm or a load run holds many). Worker count
 * from IFMESH_VERIFY_WORKERS when set (0: always inline), else the cores but one.
 */
export function sharedVerifyPool(): VerifyPool {
  if (!shared) {
    const env = process.env.IFMESH_VERIFY_WORKERS;
    const workers = env !== undefined && /^\d+$/.test(env) ? Number(env) : undefined;
    shared = new VerifyPool(workers === undefined ? {} : { workers });
  }
  return shared;
}
