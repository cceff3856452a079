// Group commit for the SQLite store, pipelined with its writer thread (issue 24.4).
//
// Appends arriving while a group is being committed are planned at once into the next group:
// idempotency keys decided, ids assigned, canonical bodies finished, rows and bodies packed (the
// writer hashes the leaves and adds them to the tree). When the writer reports the commit, the next group is already complete and goes out
// at once, so planning (this thread) and writing (the writer's) overlap, and the groups grow with
// the load, one fsync each. Two groups at most exist: the one being written, and the next.
//
// The guarantees are those of one transaction per group, as before: an append is resolved only
// after its group committed; a group that fails to commit stores nothing, and rejects its appends
// and those of the next group, which was planned on top of it (its ids would be wrong), after which
// ids follow on from what is stored. treeHead, proofs and checkpoints only see committed
// groups.
import { canonicalize } from '../../crypto/jcs.js';
import { CompactRange, type Hash, type NodeSource, nodeHash } from '../../crypto/merkle.js';
import { INDEXED_FIELDS } from '../../protocol/witness.js';
import { bodyWithId, itemContentHash } from './event-body.js';
import type { SqliteWriter, WriteGroup } from './sqlite-writer.js';
import type { AppendItem, AppendResult, StoredCheckpoint } from './store.js';

/**
 * Interior Merkle nodes below this level are not stored: each would cost a row per two, four or
 * eight events, and any of them is recomputed from at most 8 stored leaves when a proof needs it.
 */
export const FIRST_STORED_LEVEL = 4;

/**
 * Node (level, index) of a level below FIRST_STORED_LEVEL, from its 2^level leaves; undefined when
 * they are not all stored (yet).
 */
export function nodeFromLeaves(
  level: number,
  index: number,
  leaves: (start: number, end: number) => Hash[],
): Hash | undefined {
  if (level < 1 || level >= FIRST_STORED_LEVEL) return undefined;
  const width = 2 ** level;
  let row = leaves(index * width, (index + 1) * width);
  if (row.length !== width) return undefined;
  while (row.length > 1) row = row.flatMap((h, i) => (i % 2 === 0 ? [nodeHash(h, row[i + 1]!)] : []));
  return row[0];
}

/**
 * A group's bodies, each as the input of its leaf hash (0x00 then UTF-8), in one growing buffer:
 * posted to the writer as one block instead of a string per event, and hashed there without
 * turning each body into a prefixed string first (both were garbage on this thread).
 */
class BodyBuffer {
  private buf = Buffer.allocUnsafeSlow(64 * 1024);
  private length = 0;
  /** Where each body ends; a body starts (with its 0 byte) where the previous one ends. */
  readonly ends: number[] = [];

  add(body: string): void {
    const need = this.length + 1 + body.length * 3;
    if (need > this.buf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(need, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.length);
      this.buf = bigger;
    }
    this.buf[this.length] = 0;
    this.length += 1 + this.buf.write(body, this.length + 1, 'utf8');
    this.ends.push(this.length);
  }

  /** The bytes added so far, on an ArrayBuffer of their own (so it can be transferred). */
  bytes(): Uint8Array {
    return new Uint8Array(this.buf.buffer, 0, this.length);
  }
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

interface Group {
  events: unknown[];
  /** Each new event's stored body as a leaf's input: a 0 byte, then the body in UTF-8. */
  bodies: BodyBuffer;
  checkpoints: StoredCheckpoint[];
  appends: { waiter: Waiter<AppendResult>; result: AppendResult }[];
  checkpointWaiters: Waiter<void>[];
  /** Idempotency keys first stored by this group. */
  keys: Map<string, { id: number; hash: string }>;
}

export interface CommittedLog extends NodeSource {
  /** Leaves committed. */
  size(): number;
  /** The committed event holding an idempotency key. */
  storedKey(key: string): { id: number; hash: string } | undefined;
}

export class GroupCommitter {
  /** The log's size once every group planned so far is written: the next id is one more. */
  private planned: number;
  /** The committed tree: what treeHead, proofs and checkpoints see. */
  head: { size: number; root: Hash };
  private pending: { items: AppendItem[]; waiter: Waiter<AppendResult> }[] = [];
  private pendingCheckpoints: { cp: StoredCheckpoint; waiter: Waiter<void> }[] = [];
  /** True while a turn of the event loop is to plan what is pending (queries yield to it). */
  flushScheduled = false;
  private next: Group | undefined;
  private writing: { group: Group; done: Promise<void> } | undefined;

  constructor(
    private readonly log: CommittedLog,
    private readonly writer: SqliteWriter,
  ) {
    const range = CompactRange.fromSource(log, log.size());
    this.planned = range.size;
    this.head = { size: range.size, root: range.root() };
  }

  append(items: AppendItem[]): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ items, waiter: { resolve, reject } });
      this.scheduleFlush();
    });
  }

  // A checkpoint is written by the next group, with the appends arriving meanwhile: under steady
  // ingest one fsync fewer per checkpoint.
  saveCheckpoint(cp: StoredCheckpoint): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pendingCheckpoints.push({ cp, waiter: { resolve, reject } });
      this.scheduleFlush();
    });
  }

  /** Resolves when everything accepted so far is committed (or failed). */
  async drain(): Promise<void> {
    this.flush();
    while (this.writing) await this.writing.done;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Plans what is pending into the next group, and sends it if the writer is free. */
  private flush(): void {
    this.flushScheduled = false;
    const appends = this.pending;
    const checkpoints = this.pendingCheckpoints;
    this.pending = [];
    this.pendingCheckpoints = [];
    if (appends.length > 0 || checkpoints.length > 0) {
      const g: Group = this.next ?? {
        events: [],
        bodies: new BodyBuffer(),
        checkpoints: [],
        appends: [],
        checkpointWaiters: [],
        keys: new Map(),
      };
      this.next = g;
      for (const { items, waiter } of appends) {
        let result: AppendResult;
        try {
          result = this.plan(items, g);
        } catch (err) {
          waiter.reject(err);
          continue;
        }
        g.appends.push({ waiter, result });
      }
      for (const { cp, waiter } of checkpoints) {
        g.checkpoints.push(cp);
        g.checkpointWaiters.push(waiter);
      }
    }
    if (!this.writing) this.send();
  }

  private send(): void {
    const g = this.next;
    this.next = undefined;
    if (!g) return;
    const rows: WriteGroup = {
      events: g.events,
      bodies: g.bodies.bytes(),
      ends: g.bodies.ends,
      checkpoints: g.checkpoints,
    };
    const done = this.writer.write(rows).then(
      (head) => {
        this.head = head;
        this.writing = undefined;
        for (const a of g.appends) a.waiter.resolve(a.result);
        for (const w of g.checkpointWaiters) w.resolve();
        this.send();
      },
      (err: unknown) => {
        // Nothing of this group is stored, and the next one was planned on top of it.
        const next = this.next;
        this.next = undefined;
        this.writing = undefined;
        this.planned = this.log.size();
        for (const failed of next ? [g, next] : [g]) {
          for (const a of failed.appends) a.waiter.reject(err);
          for (const w of failed.checkpointWaiters) w.reject(err);
        }
      },
    );
    this.writing = { group: g, done };
  }

  private storedKey(key: string): { id: number; hash: string } | undefined {
    return this.writing?.group.keys.get(key) ?? this.next?.keys.get(key) ?? this.log.storedKey(key);
  }

  /** One append's rows into `g`; throws before changing anything if the append cannot be stored. */
  private plan(items: AppendItem[], g: Group): AppendResult {
    // Indexed loops and no per-item arrays when no item has a key (the usual batch): the iterators
    // and arrays of the general case were a good part of this thread's garbage under ingest.
    let existing: (number | undefined)[] | undefined;
    let seenInBatch: Map<string, { index: number; hash: string }> | undefined;
    // Decide every idempotency key before planning any row, so a conflict leaves no partial batch.
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const key = item.idempotencyKey;
      if (key === undefined) continue;
      existing ??= new Array<number | undefined>(items.length).fill(undefined);
      seenInBatch ??= new Map();
      const stored = this.storedKey(key);
      const earlier = seenInBatch.get(key);
      const hash = stored?.hash ?? earlier?.hash;
      const mine = itemContentHash(item);
      if (hash !== undefined && hash !== mine) return { status: 'conflict', index: i, key };
      existing[i] = stored?.id ?? (earlier ? -1 - earlier.index : undefined);
      if (!stored && !earlier) seenInBatch.set(key, { index: i, hash: mine });
    }
    // Bodies first (serialising is what may throw), then the rows, which cannot.
    const first = this.planned + 1;
    const bodies: string[] = [];
    for (let i = 0; i < items.length; i++) {
      if (existing?.[i] !== undefined) continue;
      const item = items[i]!;
      const id = first + bodies.length;
      bodies.push(item.canonical ? bodyWithId(item.canonical, id) : canonicalize({ ...item.doc, id }));
    }
    const ids = new Array<number>(items.length);
    const events = g.events;
    let next = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const known = existing?.[i];
      if (known !== undefined) {
        ids[i] = known >= 0 ? known : ids[-1 - known]!;
        continue;
      }
      const id = first + next;
      const body = bodies[next++]!;
      const k = item.idempotencyKey;
      const hash = k === undefined ? (item.contentHash ?? null) : seenInBatch!.get(k)!.hash;
      // The body travels in the group's one buffer (the writer takes it out and hashes the leaf).
      events.push(id, item.tsMs, null, k ?? null, hash);
      g.bodies.add(body);
      const doc = item.doc;
      for (let f = 0; f < INDEXED_FIELDS.length; f++) {
        const v = doc[INDEXED_FIELDS[f]!];
        events.push(typeof v === 'string' ? v : null);
      }
      if (k !== undefined) g.keys.set(k, { id, hash: hash! });
      ids[i] = id;
    }
    this.planned += next;
    return { status: 'ok', ids, created: next };
  }
}
