// The stored body of an event is the JCS canonical form (RFC 8785) of the event with its `id`. The
// id is only known inside the store's transaction, but everything else can be serialised (and
// checked) before: the canonical members are split at the place `id` sorts into, so the store only
// joins two strings around `"id":N` instead of serialising the whole event again.
import { createHash } from 'node:crypto';
import { CanonicalizationError, canonicalize } from '../../crypto/jcs.js';

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
  const keys = Object.keys(doc)
    .filter((k) => doc[k] !== undefined)
    .sort();
  const before: string[] = [];
  const after: string[] = [];
  for (const k of keys) {
    if (k === 'id') throw new CanonicalizationError('$.id: assigned by the store');
    let member: string;
    try {
      // canonicalize of a string checks it for lone surrogates and quotes it.
      member = `${canonicalize(k)}:${canonicalize(doc[k])}`;
    } catch (err) {
      if (!(err instanceof CanonicalizationError)) throw err;
      throw new CanonicalizationError(err.message.replace(/^\$/, `$.${k}`));
    }
    (k < 'id' ? before : after).push(member);
  }
  return { before: before.join(','), after: after.join(',') };
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
