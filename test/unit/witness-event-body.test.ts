// The witness serialises an event before its store transaction and only places the id inside it:
// the stored body must be byte for byte what canonicalising the event with its id gives, or every
// Merkle leaf (and every proof a verifier checks) would change.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CanonicalizationError, canonicalize } from '../../src/crypto/jcs.js';
import { bodyWithId, bodyWithoutId, canonicalEvent } from '../../src/services/witness/event-body.js';

const docs: Record<string, unknown>[] = [
  {},
  { event: 'x' },
  { zeta: 1 },
  { event: 'a', timestamp: '2026-01-01T00:00:00Z', metadata: { b: [1, 'two', null], a: { y: true } } },
  { agent_id: 'agent-1', idempotency_key: 'k', i: 1, ic: 2, iD: 3, Id: 4, 'i d': 5, h: 6, '': 7 },
  { event: 'ü', ä: 'ß', '\u{1F600}': 'emoji key', metadata: { n: 1e21, m: -0, f: 0.1 } },
  { skipped: undefined, event: 'e' },
];

describe('canonicalEvent', () => {
  it('gives the canonical body with the id in its sorted place, for any keys', () => {
    for (const doc of docs)
      for (const id of [1, 42, 9_007_199_254_740_991]) {
        const c = canonicalEvent(doc);
        expect(bodyWithId(c, id)).toBe(canonicalize({ ...doc, id }));
        expect(bodyWithoutId(c)).toBe(canonicalize(doc));
      }
  });

  it('refuses what I-JSON forbids, naming the member, as canonicalize does', () => {
    expect(() => canonicalEvent({ event: 'e', metadata: { s: '\ud800' } })).toThrow(
      /^\$\.metadata\.s: string has a lone surrogate/,
    );
    expect(() => canonicalEvent({ n: Number.NaN })).toThrow(CanonicalizationError);
    expect(() => canonicalEvent({ '\udc00': 1 })).toThrow(/lone surrogate/);
    expect(() => canonicalEvent({ id: 1 })).toThrow(CanonicalizationError);
  });

  // canonicalEvent is a second serialiser of the same documents (a faster one for the ingest path):
  // any document, including keys that sort around "id", lone surrogates and non-finite numbers,
  // must give canonicalize's bytes or be refused as canonicalize refuses it.
  it('agrees with canonicalize on arbitrary documents', () => {
    // Strings of UTF-16 code units, lone surrogates included (fast-check's units keep pairs whole).
    const unit = fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom('i', 'd', '"'),
    );
    const text = fc.oneof(
      fc.string({ unit, maxLength: 6 }),
      fc.constantFrom('i', 'ic', 'iD', 'Id', '', 'event'),
    );
    const value = fc.oneof(
      fc.jsonValue(),
      text,
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 1e21, undefined),
      fc.dictionary(text, fc.oneof(fc.jsonValue(), text)),
    );
    fc.assert(
      fc.property(fc.dictionary(text, value), fc.integer({ min: 1, max: 2 ** 53 - 1 }), (doc, id) => {
        delete doc.id;
        let expected: string;
        try {
          expected = canonicalize({ ...doc, id });
        } catch (err) {
          expect(err).toBeInstanceOf(CanonicalizationError);
          expect(() => canonicalEvent(doc)).toThrow(CanonicalizationError);
          return;
        }
        const c = canonicalEvent(doc);
        expect(bodyWithId(c, id)).toBe(expected);
        expect(bodyWithoutId(c)).toBe(canonicalize(doc));
      }),
      { numRuns: 2000 },
    );
  });
});
