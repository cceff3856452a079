import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/crypto/checkpoint.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../src/crypto/merkle.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

// A fresh witness (database, key, counters) per test: no test sees another's events or counts.
const NOW = Date.parse('2026-03-01T12:00:00.000Z');
let w: RunningWitness;
beforeEach(async () => {
  w = await startWitness({ now: () => NOW });
});
afterEach(async () => {
  await w.stop();
});

describe('witness HTTP API', () => {
  it('answers /health with compact JSON the runbook can grep', async () => {
    const res = await fetch(`${w.url}/health`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).toContain('"status":"ok"');
  });

  it('stores one event (201 {"id"}) and a batch (201 {"ids"}) on /api/log and /api/events', async () => {
    const one = await post(`${w.url}/api/log`, {
      event: 'incident_declared',
      incident_id: 'INC-1',
      severity: 'p1',
    });
    expect(one.status).toBe(201);
    expect(typeof one.json.id).toBe('number');
    const many = await post(`${w.url}/api/events`, [{ event: 'a_event' }, { event: 'b_event' }]);
    expect(many.status).toBe(201);
    expect(many.json.ids).toEqual([one.json.id + 1, one.json.id + 2]);
  });

  it('fills in timestamp, keeps unknown top-level fields, and returns events oldest first', async () => {
    await post(`${w.url}/api/log`, {
      event: 'keep_fields',
      custom: { x: 1 },
      scenario: 'A',
      timestamp: '2026-01-01T00:00:02Z',
    });
    await post(`${w.url}/api/log`, { event: 'keep_fields', timestamp: '2026-01-01T00:00:01Z' });
    await post(`${w.url}/api/log`, { event: 'keep_fields' });
    const r = await post(`${w.url}/api/query`, { query: { event: 'keep_fields' } });
    expect(r.json.results.map((e: { timestamp: string }) => e.timestamp.slice(0, 19))).toEqual([
      '2026-01-01T00:00:01',
      '2026-01-01T00:00:02',
      expect.stringMatching(/^20\d\d-/),
    ]);
    expect(r.json.results[1]).toMatchObject({ custom: { x: 1 }, scenario: 'A' });
    // The witness stamps an event without a timestamp with its clock's time.
    expect(Date.parse(r.json.results[2].timestamp)).toBe(NOW);
  });

  it('refuses writes without the right bearer token and counts them in /metrics', async () => {
    expect((await post(`${w.url}/api/log`, { event: 'x' }, null)).status).toBe(401);
    expect((await post(`${w.url}/api/log`, { event: 'x' }, 'wrong')).status).toBe(401);
    expect((await post(`${w.url}/api/admin/cleanup`, { retain_days: 1 }, `${API_KEY}x`)).status).toBe(401);
    const metrics = await (await fetch(`${w.url}/metrics`)).text();
    expect(metrics).toMatch(/^witness_unauthorized_attempts_total 3$/m);
  });

  it('rejects bad bodies with JSON errors: 400 invalid, 413 too large, 409 conflicting key', async () => {
    const bad = await post(`${w.url}/api/log`, '{"event":');
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('invalid_json');
    const noName = await post(`${w.url}/api/log`, [{ event: 'ok' }, { evnt: 'typo' }]);
    expect(noName.status).toBe(400);
    expect(noName.json.error.message).toContain('[1].event');
    const big = await post(`${w.url}/api/log`, { event: 'big', blob: 'x'.repeat(1024 * 1024) });
    expect(big.status).toBe(413);
    const tooMany = await post(
      `${w.url}/api/log`,
      Array.from({ length: 1001 }, () => ({ event: 'e' })),
    );
    expect(tooMany.status).toBe(413);
    expect(tooMany.json.error.code).toBe('batch_too_large');
    const before = (await post(`${w.url}/api/query`, { query: { event: 'ok' } })).json.count;
    expect(before).toBe(0);
  });

  it('is idempotent per idempotency_key: same content → original id, different content → 409', async () => {
    const ev = { event: 'idem_test', idempotency_key: 'k-1', metadata: { n: 1 } };
    const a = await post(`${w.url}/api/log`, ev);
    const b = await post(`${w.url}/api/log`, ev);
    expect(b.status).toBe(201);
    expect(b.json.id).toBe(a.json.id);
    expect(b.json.created).toBe(0);
    const c = await post(`${w.url}/api/log`, { ...ev, metadata: { n: 2 } });
    expect(c.status).toBe(409);
    expect((await post(`${w.url}/api/query`, { query: { event: 'idem_test' } })).json.count).toBe(1);
  });

  it('pages with limit and next_cursor without skipping or repeating', async () => {
    await post(
      `${w.url}/api/log`,
      Array.from({ length: 25 }, (_, i) => ({ event: 'page_test', n: i })),
    );
    const seen: number[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const r: { json: { results: { n: number }[]; next_cursor: string | null } } = await post(
        `${w.url}/api/query`,
        {
          query: { event: 'page_test' },
          limit: 10,
          cursor,
        },
      );
      seen.push(...r.json.results.map((e) => e.n));
      cursor = r.json.next_cursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect((await post(`${w.url}/api/query`, { limit: 10_001 })).status).toBe(400);
  });

  it('answers bad queries with 400 naming the offending key', async () => {
    const cases: Array<[unknown, string]> = [
      [{ query: { event: { $gtx: 1 } } }, 'query.event'],
      [{ query: { 'metadata.state': ['a', 'b'] } }, 'query.metadata.state'],
      [{ query: {}, time_range: { from: 'yesterday' } }, 'time_range.from'],
      [{ query: { event: { regex: '(unclosed' } } }, 'query.event.regex'],
      [{ query: { event: { regex: 'a'.repeat(257) } } }, 'longer than 256'],
      [{ query: { 'bad key!': 1 } }, 'query.bad key!'],
      [{ qurey: {} }, 'qurey'],
      [{ cursor: 'nonsense' }, 'cursor'],
    ];
    for (const [body, fragment] of cases) {
      const r = await post(`${w.url}/api/query`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.message).toContain(fragment);
    }
  });

  it('serves a signed checkpoint and proofs that verify against it', async () => {
    await post(`${w.url}/api/log`, [
      { event: 'before_cp1' },
      { event: 'before_cp1' },
      { event: 'before_cp1' },
    ]);
    const key = (await (await fetch(`${w.url}/api/key`)).json()) as any;
    const note1 = await (await fetch(`${w.url}/api/checkpoint`)).text();
    const cp1 = openCheckpoint(note1, key.key_name, w.publicKey);
    await post(`${w.url}/api/log`, [{ event: 'after_cp1' }, { event: 'after_cp1' }]);
    const cp2 = openCheckpoint(
      await (await fetch(`${w.url}/api/checkpoint`)).text(),
      key.key_name,
      w.publicKey,
    );
    expect(cp2.size).toBe(cp1.size + 2);
    const cons = (await (
      await fetch(`${w.url}/api/proof/consistency?from=${cp1.size}&to=${cp2.size}`)
    ).json()) as any;
    const b = (s: string) => Buffer.from(s, 'base64');
    expect(verifyConsistency(cp1.size, cp2.size, cp1.root, cp2.root, cons.hashes.map(b))).toBe(true);
    // Inclusion of the first event: its leaf is the hash of its stored form.
    const first = (await post(`${w.url}/api/query`, { limit: 1 })).json.results[0];
    const inc = (await (
      await fetch(`${w.url}/api/proof/inclusion?id=${first.id}&tree_size=${cp2.size}`)
    ).json()) as any;
    const { canonicalize } = await import('../../src/crypto/jcs.js');
    expect(b(inc.leaf_hash)).toEqual(leafHash(Buffer.from(canonicalize(first))));
    expect(verifyInclusion(b(inc.leaf_hash), first.id - 1, cp2.size, inc.hashes.map(b), cp2.root)).toBe(true);
  });

  it('answers unknown routes and methods with JSON 404/405', async () => {
    const a = await fetch(`${w.url}/nope`);
    expect(a.status).toBe(404);
    expect(((await a.json()) as any).error.code).toBe('not_found');
    const b = await fetch(`${w.url}/api/query`);
    expect(b.status).toBe(405);
  });
});

describe('witness query token', () => {
  it('requires WITNESS_QUERY_TOKEN for queries only when it is set', async () => {
    const guarded = await startWitness({ queryToken: 'q-token' });
    try {
      expect((await post(`${guarded.url}/api/query`, {}, null)).status).toBe(401);
      expect((await post(`${guarded.url}/api/query`, {}, 'q-token')).status).toBe(200);
    } finally {
      await guarded.stop();
    }
    expect((await post(`${w.url}/api/query`, {}, null)).status).toBe(200);
  });
});
