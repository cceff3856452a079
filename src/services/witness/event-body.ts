// The stored body of an event is the JCS canonical form (RFC 8785) of the event with its `id`. The
// id is only known inside the store's transaction, but everything else can be serialised (and
// checked) before: the canonical members are split at the place `id` sorts into, so the store only
// joins two strings around `"id":N` instead of serialising the whole event again.
import { createHash } from 'node:crypto';
import { CanonicalizationError, canonicalize, sortedKeys, wellFormed } from '../../crypto/jcs.js';

/** An event's canonical members, sorted (UTF-16 code units) and split around where `id` goes. */
export interface CanonicalEvent {
  /** Members whose keys sort before "id", joined by commas; '' when none. */
  before: string;
  /** Members whose keys sort after "id"; '' when none. */
  after: string;
}

/**
 * Serialises `doc` (which must not hold `id`) as JCS members; throws CanonicalizationError naming
 * the member for what I-JSON forbids (lone surrogates, non-finite numbers), as canonicalize does.
 */
export function canonicalEvent(doc: Record<string, unknown>): CanonicalEvent {
  // One pass, no intermediate arrays, the quoted keys cached: profiled under batched ingest this was
  // a sixth of the witness main thread, most of it quoting the same few keys again for every event.
  const keys = sortedKeys(doc);
  let before = '';
  let after = '';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = doc[k];
    if (v === undefined) continue;
    if (k === 'id') throw new CanonicalizationError('$.id: assigned by the store');
    let member: string;
    try {
      // canonicalize of a string checks it for lone surrogates and quotes it; a well-formed string
      // (the usual member) is quoted as canonicalize would, without the dispatch.
      member = quotedKey(k) + (typeof v === 'string' && wellFormed(v) ? JSON.stringify(v) : canonicalize(v));
    } catch (err) {
      if (!(err instanceof CanonicalizationError)) throw err;
      throw new CanonicalizationError(err.message.replace(/^\$/, `$.${k}`));
    }
    if (k < 'id') before = before === '' ? member : `${before},${member}`;
    else after = after === '' ? member : `${after},${member}`;
  }
  return { before, after };
}

// `"key":` for the keys seen lately: events of one kind share their keys. Bounded, as keys are
// chosen by clients.
const quotedKeys = new Map<string, string>();

function quotedKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = `${canonicalize(k)}:`;
    if (quotedKeys.size >= 1024) quotedKeys.clear();
    quotedKeys.set(k, q);
  }
  return q;
}

/** canonicalize({ ...doc, id }), from the event's split members. */
export function bodyWithId(c: CanonicalEvent, id: number): string {
  return `{${c.before}${c.before ? ',' : ''}"id":${id}${c.after ? ',' : ''}${c.after}}`;
}

/** canonicalize(doc), from the event's split members. */
export function bodyWithoutId(c: CanonicalEvent): string {
  return `{${c.before}${c.before && c.after ? ',' : ''}${c.after}}`;
}

/** The hash that tells a retry from a different event under the same idempotency key. */
export function contentHash(canonicalText: string): string {
  return createHash('sha256').update(canonicalText).digest('base64url');
}

/** An item's content hash: the one it carries, else that of its document as given. */
export function itemContentHash(item: {
  doc: Record<string, unknown>;
  contentHash?: string | undefined;
}): string {
  return item.contentHash ?? contentHash(canonicalize(item.doc));
}
