import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Dispatcher } from 'undici';
import { httpRequest } from '../../clients/http.js';
import {
  type HeldCheckpoint,
  type HeldCheckpoints,
  normalizeWitnessUrl,
  observeCheckpoint,
  readHeldCheckpoints,
  WitnessInconsistentError,
} from '../../clients/witness-checkpoint.js';
import { CheckpointError, openCheckpoint } from '../../crypto/checkpoint.js';
import { fromBase64url } from '../../crypto/ed25519.js';
import { canonicalize } from '../../crypto/jcs.js';
import { readPublicKey } from '../../crypto/key-file.js';
import { CompactRange, leafHash } from '../../crypto/merkle.js';
import { UsageError } from '../../errors.js';
import { openPgRows } from '../../services/witness/pg-bulk.js';
import { isPostgresUrl, redactDbUrl } from '../../services/witness/pg-store.js';
import { witnessOrigin } from '../../services/witness/server.js';
import type { StateDir } from '../../state/state-dir.js';

export type ProblemKind =
  | 'modified'
  | 'missing'
  | 'moved'
  | 'unexpected'
  | 'truncated'
  | 'root_mismatch'
  | 'bad_signature'
  | 'pruned_outside_cleanup';

export interface Problem {
  kind: ProblemKind;
  /** The first sequence number (event id) concerned, when one can be named. */
  seq: number | null;
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  source: string;
  tree_size: number;
  events_checked: number;
  events_pruned: number;
  checkpoints_verified: number;
  /** Events after the newest signed checkpoint: intact as far as their leaves go, but not yet signed. */
  unsigned_tail: number;
  held_checkpoint: { size: number; seen_at: string } | null;
  first_bad_seq: number | null;
  problems: Problem[];
}

function finish(r: Omit<VerifyReport, 'ok' | 'first_bad_seq'>): VerifyReport {
  // A root mismatch only bounds the first bad event from below; an exact finding wins.
  const exact = r.problems.filter((p) => p.kind !== 'root_mismatch');
  const seqs = (exact.some((p) => p.seq !== null) ? exact : r.problems)
    .map((p) => p.seq)
    .filter((s): s is number => s !== null);
  return { ok: r.problems.length === 0, first_bad_seq: seqs.length ? Math.min(...seqs) : null, ...r };
}

interface Checkpointed {
  size: number;
  root: Buffer;
  note: string;
}

/** Compares a recomputed tree, leaf by leaf, with signed checkpoints and the checkpoint held outside. */
class TreeCheck {
  readonly range = new CompactRange();
  readonly problems: Problem[] = [];
  verified = 0;
  private next = 0;
  private lastGood = 0;

  constructor(
    private readonly checkpoints: Checkpointed[],
    private readonly held: HeldCheckpoint | undefined,
  ) {}

  push(leaf: Buffer): void {
    this.range.append(leaf);
    const size = this.range.size;
    while (this.next < this.checkpoints.length && this.checkpoints[this.next]!.size === size) {
      this.compare(this.checkpoints[this.next]!.root, size, 'a signed checkpoint');
      this.next += 1;
    }
    if (this.held && this.held.size === size)
      this.compare(Buffer.from(this.held.root, 'base64'), size, 'the checkpoint held outside the database');
  }

  private compare(root: Buffer, size: number, what: string): void {
    if (this.range.root().equals(root)) {
      this.verified += 1;
      this.lastGood = size;
    } else if (!this.problems.some((p) => p.kind === 'root_mismatch')) {
      this.problems.push({
        kind: 'root_mismatch',
        seq: this.lastGood + 1,
        detail: `the tree of events 1..${size} does not match ${what}; the first changed event is between ${this.lastGood + 1} and ${size}`,
      });
    }
  }
}

function heldInfo(held: HeldCheckpoint | undefined) {
  return held ? { size: held.size, seen_at: held.seen_at } : null;
}

export interface VerifyDbOptions {
  dbPath: string;
  state: StateDir;
  /** The witness public key (43 base64url characters or a .pub/.key file); default: see logKey. */
  publicKey?: string | undefined;
  cwd: string;
}

/** What an offline check reads from a store's tables: everything in sequence order. */
interface LogRows {
  checkpoints: Checkpointed[];
  leaves: AsyncIterable<{ idx: number; hash: Buffer }>;
  events: AsyncIterable<{ id: number; ts_ms: number; body: string | null }>;
  prunedCount: () => Promise<number>;
}

/** Offline: reads the database (a SQLite file or a postgres:// URL) directly and recomputes everything from the events themselves. */
export async function verifyDb(opts: VerifyDbOptions): Promise<VerifyReport> {
  const postgres = isPostgresUrl(opts.dbPath);
  if (!postgres && !existsSync(opts.dbPath))
    throw new UsageError(`${opts.dbPath} does not exist`, 'pass the witness database with --db');
  const heldAll = await readHeldCheckpoints(opts.state);
  const source = postgres ? redactDbUrl(opts.dbPath) : opts.dbPath;
  if (postgres) {
    const rows = await openPgRows(opts.dbPath);
    try {
      const { publicKey, origin, held } = await logKey(opts, heldAll, rows.rows.checkpoints);
      return await verifyRows(rows.rows, source, origin, publicKey, held);
    } finally {
      await rows.close();
    }
  }
  let db: Database.Database;
  try {
    db = new Database(opts.dbPath, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new UsageError(`cannot open ${opts.dbPath}: ${(err as Error).message}`);
  }
  try {
    const rows: LogRows = {
      checkpoints: db
        .prepare('SELECT size, root, note FROM checkpoints ORDER BY size')
        .all() as Checkpointed[],
      leaves: toAsync(
        db.prepare('SELECT idx, hash FROM nodes WHERE level = 0 ORDER BY idx').iterate() as Iterable<{
          idx: number;
          hash: Buffer;
        }>,
      ),
      events: toAsync(
        db.prepare('SELECT id, ts_ms, body FROM events ORDER BY id').iterate() as Iterable<{
          id: number;
          ts_ms: number;
          body: string | null;
        }>,
      ),
      prunedCount: async () =>
        (db.prepare('SELECT COUNT(*) FROM events WHERE body IS NULL').pluck().get() as number) ?? 0,
    };
    const { publicKey, origin, held } = await logKey(opts, heldAll, rows.checkpoints);
    return await verifyRows(rows, source, origin, publicKey, held);
  } finally {
    db.close();
  }
}

/**
 * The key a log is checked with, and the checkpoint held for its origin (only that one is compared
 * with it): --pubkey; else witness.pub or witness.key beside the database (the state dir for
 * PostgreSQL); else the held key of the origin the log's newest checkpoint names; else, when one
 * log alone is held, its key.
 */
async function logKey(
  opts: VerifyDbOptions,
  heldAll: HeldCheckpoints,
  checkpoints: Checkpointed[],
): Promise<{ publicKey: Uint8Array; origin: string; held: HeldCheckpoint | undefined }> {
  let publicKey: Uint8Array | undefined;
  if (opts.publicKey) publicKey = (await readPublicKey(opts.publicKey, opts.cwd)).publicKey;
  const dir = isPostgresUrl(opts.dbPath) ? opts.state.root : path.dirname(opts.dbPath);
  for (const name of ['witness.pub', 'witness.key']) {
    const beside = path.join(dir, name);
    if (!publicKey && existsSync(beside)) publicKey = (await readPublicKey(beside, opts.cwd)).publicKey;
  }
  if (!publicKey) {
    const newest = checkpoints[checkpoints.length - 1]?.note.split('\n')[0];
    const logs = Object.values(heldAll.logs);
    const named = (newest ? heldAll.logs[newest] : undefined) ?? (logs.length === 1 ? logs[0] : undefined);
    if (named) publicKey = fromBase64url(named.public_key, 32, 'held checkpoint public key');
  }
  if (!publicKey)
    throw new UsageError(
      'no witness public key to check checkpoint signatures with',
      'pass --pubkey, or keep witness.pub beside the database',
    );
  const origin = witnessOrigin(publicKey);
  return { publicKey, origin, held: heldAll.logs[origin] };
}

async function* toAsync<T>(it: Iterable<T>): AsyncIterable<T> {
  yield* it;
}

async function verifyRows(
  rows: LogRows,
  source: string,
  origin: string,
  publicKey: Uint8Array,
  held: HeldCheckpoint | undefined,
): Promise<VerifyReport> {
  const problems: Problem[] = [];
  const checkpoints: Checkpointed[] = [];
  for (const row of rows.checkpoints) {
    try {
      const cp = openCheckpoint(row.note, origin, publicKey);
      if (cp.size !== row.size || !cp.root.equals(row.root))
        throw new CheckpointError('stored size or root differs from the signed note');
      checkpoints.push({ size: cp.size, root: cp.root, note: row.note });
    } catch (err) {
      problems.push({
        kind: 'bad_signature',
        seq: null,
        detail: `checkpoint at size ${row.size}: ${(err as Error).message}`,
      });
    }
  }
  const check = new TreeCheck(checkpoints, held);
  const events = rows.events[Symbol.asyncIterator]();
  let pending = await events.next();
  let checked = 0;
  let pruned: number[] = [];
  let maxCutoff = Number.NEGATIVE_INFINITY;
  let expectedIdx = 0;
  for await (const leaf of rows.leaves) {
    const seq = leaf.idx + 1;
    if (leaf.idx !== expectedIdx) {
      problems.push({
        kind: 'missing',
        seq: expectedIdx + 1,
        detail: `the leaf of event ${expectedIdx + 1} is missing from the tree`,
      });
      break;
    }
    expectedIdx += 1;
    while (!pending.done && pending.value.id < seq) {
      problems.push({
        kind: 'unexpected',
        seq: pending.value.id,
        detail: `event ${pending.value.id} has no leaf in the tree`,
      });
      pending = await events.next();
    }
    const row = !pending.done && pending.value.id === seq ? pending.value : undefined;
    if (!row) {
      problems.push({ kind: 'missing', seq, detail: `event ${seq} was deleted` });
      check.push(leaf.hash);
      continue;
    }
    pending = await events.next();
    if (row.body === null) {
      pruned.push(row.ts_ms);
      check.push(leaf.hash);
      continue;
    }
    checked += 1;
    let doc: Record<string, unknown> | undefined;
    try {
      doc = JSON.parse(row.body) as Record<string, unknown>;
    } catch {
      doc = undefined;
    }
    const recomputed = leafHash(Buffer.from(doc ? canonicalize(doc) : row.body));
    if (doc && doc.id !== seq) {
      problems.push({ kind: 'moved', seq, detail: `the row at ${seq} holds event ${String(doc.id)}` });
    } else if (!recomputed.equals(leaf.hash)) {
      problems.push({ kind: 'modified', seq, detail: `event ${seq} does not match its leaf hash` });
    }
    if (doc?.event === 'witness_events_pruned') {
      const cutoff = Date.parse(String((doc.metadata as { cutoff?: string } | undefined)?.cutoff));
      if (!Number.isNaN(cutoff)) maxCutoff = Math.max(maxCutoff, cutoff);
    }
    // The roots are checked over the stored leaves: a row that does not match its leaf is reported
    // above, exactly; a root mismatch then means the leaves themselves were rewritten.
    check.push(leaf.hash);
  }
  while (!pending.done) {
    problems.push({
      kind: 'unexpected',
      seq: pending.value.id,
      detail: `event ${pending.value.id} has no leaf in the tree`,
    });
    pending = await events.next();
  }
  const bad = pruned.filter((ts) => ts >= maxCutoff);
  if (bad.length)
    problems.push({
      kind: 'pruned_outside_cleanup',
      seq: null,
      detail: `${bad.length} event(s) had their content removed without a logged cleanup covering them`,
    });
  pruned = [];
  const size = check.range.size;
  const newest = checkpoints[checkpoints.length - 1];
  if (newest && newest.size > size) {
    problems.push({
      kind: 'truncated',
      seq: size + 1,
      detail: `the log has ${size} events, its own newest signed checkpoint says ${newest.size}`,
    });
  }
  if (held && held.size > size) {
    problems.push({
      kind: 'truncated',
      seq: size + 1,
      detail: `the log has ${size} events, a checkpoint held outside the database (seen ${held.seen_at}) says ${held.size}`,
    });
  }
  problems.push(...check.problems);
  return finish({
    source,
    tree_size: size,
    events_checked: checked,
    events_pruned: await rows.prunedCount(),
    checkpoints_verified: check.verified,
    unsigned_tail: Math.max(0, size - (newest?.size ?? 0)),
    held_checkpoint: heldInfo(held),
    problems,
  });
}

export interface VerifyUrlOptions {
  url: string;
  state: StateDir;
  dispatcher?: Dispatcher | undefined;
  timeoutMs?: number;
  queryToken?: string | undefined;
}

/** Online: proves the served checkpoint consistent with the held one, then recomputes the served tree. */
export async function verifyUrl(opts: VerifyUrlOptions): Promise<VerifyReport> {
  const base = normalizeWitnessUrl(opts.url);
  const before = await readHeldCheckpoints(opts.state);
  const knownOrigin = before.urls[base];
  let heldBefore = knownOrigin ? before.logs[knownOrigin] : undefined;
  const problems: Problem[] = [];
  let observation: Awaited<ReturnType<typeof observeCheckpoint>>;
  try {
    observation = await observeCheckpoint({
      url: base,
      state: opts.state,
      dispatcher: opts.dispatcher,
      timeoutMs: opts.timeoutMs,
    });
  } catch (err) {
    if (!(err instanceof WitnessInconsistentError)) throw err;
    return finish({
      source: base,
      tree_size: 0,
      events_checked: 0,
      events_pruned: 0,
      checkpoints_verified: 0,
      unsigned_tail: 0,
      held_checkpoint: heldInfo(heldBefore),
      problems: [{ kind: 'truncated', seq: heldBefore ? heldBefore.size : null, detail: err.message }],
    });
  }
  const cp = observation.checkpoint;
  heldBefore = observation.previous;
  const check = new TreeCheck([{ size: cp.size, root: cp.root, note: '' }], heldBefore);
  const leaves: Buffer[] = [];
  for (let start = 0; start < cp.size; start += 10_000) {
    const end = Math.min(cp.size, start + 10_000);
    const res = await httpRequest(`${base}/api/leaves?start=${start}&end=${end}`, {
      dispatcher: opts.dispatcher,
      timeoutMs: opts.timeoutMs,
    });
    const got = ((res.json as { leaf_hashes?: string[] })?.leaf_hashes ?? []).map((h) =>
      Buffer.from(h, 'base64'),
    );
    if (res.status !== 200 || got.length !== end - start)
      throw new WitnessInconsistentError(`the witness served ${got.length} leaves for ${start}..${end}`);
    leaves.push(...got);
  }
  let checked = 0;
  let cursor: string | null = null;
  const headers: Record<string, string> = opts.queryToken
    ? { authorization: `Bearer ${opts.queryToken}` }
    : {};
  for (let page = 0; page < 100_000; page++) {
    const res = await httpRequest(`${base}/api/query`, {
      method: 'POST',
      body: JSON.stringify({ limit: 10_000, cursor }),
      headers,
      dispatcher: opts.dispatcher,
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
    const body = res.json as { results?: Record<string, unknown>[]; next_cursor?: string | null };
    if (res.status !== 200 || !body?.results)
      throw new WitnessInconsistentError(`witness query failed with ${res.status}`);
    for (const ev of body.results) {
      const id = Number(ev.id);
      if (!Number.isInteger(id) || id < 1 || id > cp.size) continue;
      checked += 1;
      if (!leafHash(Buffer.from(canonicalize(ev))).equals(leaves[id - 1]!)) {
        problems.push({
          kind: 'modified',
          seq: id,
          detail: `event ${id} as served does not match its leaf hash`,
        });
      }
    }
    cursor = body.next_cursor ?? null;
    if (!cursor) break;
  }
  for (const leaf of leaves) check.push(leaf);
  problems.push(...check.problems);
  return finish({
    source: base,
    tree_size: cp.size,
    events_checked: checked,
    events_pruned: cp.size - checked,
    checkpoints_verified: check.verified,
    unsigned_tail: 0,
    held_checkpoint: heldInfo(heldBefore),
    problems,
  });
}
