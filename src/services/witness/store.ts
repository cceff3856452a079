import type { Hash } from '../../crypto/merkle.js';
import type { CanonicalEvent } from './event-body.js';
import type { Cursor, ParsedQuery } from './query.js';

/** One event to append. The store assigns `id` (the log sequence number, from 1). */
export interface AppendItem {
  doc: Record<string, unknown>;
  tsMs: number;
  idempotencyKey: string | undefined;
  /**
   * Hash of the event as submitted, to tell a retry from a different event under the same key;
   * needed only with an idempotency key (the server computes it for those alone).
   */
  contentHash?: string | undefined;
  /** `doc` already serialised (by the server, which checked it could be); else the store does it. */
  canonical?: CanonicalEvent | undefined;
}

export type AppendResult =
  | { status: 'ok'; ids: number[]; created: number }
  | { status: 'conflict'; index: number; key: string };

export interface QueryResult {
  /** Stored events as JSON text, oldest first. */
  bodies: string[];
  next: Cursor | undefined;
}

export interface StoredCheckpoint {
  size: number;
  root: Hash;
  time: string;
  note: string;
}

export class QueryTimeoutError extends Error {}

/** A stored event as a scan returns it. */
export interface ScanRow {
  id: number;
  ts_ms: number;
  body: string;
}

/**
 * Where IF.witness keeps its log. The SQLite store is the default; a PostgreSQL store must pass the
 * same contract suite (test/integration/witness-store-contract.ts). Each append is atomic: all of
 * its events are stored, or none.
 */
export interface WitnessStore {
  readonly kind: string;
  append(items: AppendItem[]): Promise<AppendResult>;
  query(q: ParsedQuery, deadlineMs: number): Promise<QueryResult>;
  treeHead(): Promise<{ size: number; root: Hash }>;
  rootAt(size: number): Promise<Hash>;
  inclusionProof(index: number, size: number): Promise<Hash[]>;
  consistencyProof(size1: number, size2: number): Promise<Hash[]>;
  leafHashes(start: number, end: number): Promise<Hash[]>;
  saveCheckpoint(cp: StoredCheckpoint): Promise<void>;
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** Drops the content of events older than cutoff; their leaf hashes stay so the tree still verifies. */
  prune(cutoffMs: number): Promise<number>;
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
  close(): Promise<void>;
}

/** One page of `limit` rows of a scan that read up to limit + 1, and the cursor after it if it found more. */
export function pageOf(rows: ScanRow[], limit: number): QueryResult {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  const last = shown[shown.length - 1];
  return {
    bodies: shown.map((r) => r.body),
    next: more && last ? { tsMs: last.ts_ms, id: last.id } : undefined,
  };
}
