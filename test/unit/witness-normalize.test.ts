// normalizeEvent: a caller's event is not changed unless the caller owns it (the witness's own
// parse of a request body, where a copy per event was a good part of batched ingest's garbage),
// and a batch index names the event in errors as before.
import { describe, expect, it } from 'vitest';
import { EventInvalidError, normalizeEvent } from '../../src/protocol/witness.js';

const NOW = Date.parse('2026-12-06T10:00:00Z');

describe('normalizeEvent', () => {
  it('fills in a missing timestamp on a copy, leaving the given event as it was', () => {
    const sent = { event: 'x', metadata: { n: 1 } };
    const n = normalizeEvent(sent, NOW, 'event');
    expect(n.doc).toEqual({ event: 'x', metadata: { n: 1 }, timestamp: '2026-12-06T10:00:00.000Z' });
    expect(sent).toEqual({ event: 'x', metadata: { n: 1 } });
    expect(n.tsMs).toBe(NOW);
  });

  it('fills it in place when the caller owns the event', () => {
    const sent: Record<string, unknown> = { event: 'x' };
    const n = normalizeEvent(sent, NOW, 0, true);
    expect(n.doc).toBe(sent);
    expect(sent.timestamp).toBe('2026-12-06T10:00:00.000Z');
  });

  it('names a batch member by its index, and a single event as "event"', () => {
    expect(() => normalizeEvent({ event: '' }, NOW, 3)).toThrow(
      new EventInvalidError('[3].event: required, 1-128 characters of A-Z a-z 0-9 _ . : -'),
    );
    expect(() => normalizeEvent(7, NOW, 'event')).toThrow('event: must be a JSON object');
    expect(() => normalizeEvent({ event: 'x', id: 1 }, NOW, 12, true)).toThrow(
      '[12].id: assigned by the witness',
    );
  });
});
