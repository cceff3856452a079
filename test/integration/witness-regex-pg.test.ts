// The hostile-regex test of witness-regex.test.ts against a witness process on PostgreSQL: regexes
// are evaluated with RE2 semantics in slices, so (a+)+$ over long values is answered (200, or 503
// query_timeout at the query deadline) and /health keeps answering meanwhile.

import path from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { postgresForThisFile } from '../helpers/postgres.js';
import { type Service, startWitnessProcess } from '../helpers/processes.js';
import { post } from '../helpers/witness.js';

const server = postgresForThisFile();
let w: Service;
let cleanup: () => void;
beforeAll(async () => {
  const t = tempDir();
  cleanup = t.cleanup;
  w = await startWitnessProcess(await server().createDatabase(), ['--key', path.join(t.dir, 'witness.key')]);
  // Long values that make a backtracking engine take exponential time on (a+)+$.
  for (let batch = 0; batch < 4; batch++) {
    const events = Array.from({ length: 100 }, (_, i) => ({
      event: 'long_value',
      metadata: { payload: `${'a'.repeat(5000)}!`, i },
    }));
    expect((await post(`${w.url}/api/log`, events)).status).toBe(201);
  }
}, 120_000);
afterAll(async () => {
  await w?.stop();
  cleanup?.();
});

describe('regex queries on PostgreSQL, prefiltered in SQL', () => {
  it('find exactly the matching events, wildcard characters of LIKE included', async () => {
    const notes = ['50%_off', '50 off', '5000_off', 'x_y', 'xay', 'back\\slash', 'say "hi"'];
    const events = notes.map((note, i) => ({
      event: i % 2 ? 'prefilter_odd' : 'prefilter_even',
      metadata: { note },
    }));
    expect((await post(`${w.url}/api/log`, events)).status).toBe(201);
    const found = async (query: Record<string, unknown>) => {
      const r = await post(`${w.url}/api/query`, { query, limit: 50 });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      return r.json.results.map((e: { metadata: { note: string } }) => e.metadata.note).sort();
    };
    expect(await found({ 'metadata.note': { regex: '50%_off' } })).toEqual(['50%_off']);
    expect(await found({ 'metadata.note': { regex: '^x_y$' } })).toEqual(['x_y']);
    expect(await found({ 'metadata.note': { regex: '^x.y$' } })).toEqual(['x_y', 'xay']);
    expect(await found({ 'metadata.note': { regex: 'back\\\\slash' } })).toEqual(['back\\slash']);
    expect(await found({ 'metadata.note': { regex: 'say "hi"' } })).toEqual(['say "hi"']);
    expect(await found({ 'metadata.note': { regex: '0+_off$' } })).toEqual(['5000_off']);
    // An indexed field is prefiltered on its own column.
    expect(await found({ event: { regex: '^prefilter_ev.n$' } })).toEqual(
      ['50%_off', '5000_off', 'say "hi"', 'xay'].sort(),
    );
  });
});

describe('hostile regular expressions on PostgreSQL', () => {
  it('refuses a pattern over 256 characters with 400', async () => {
    const r = await post(`${w.url}/api/query`, {
      query: { 'metadata.payload': { regex: `${'a'.repeat(257)}` } },
    });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain('query.metadata.payload.regex');
  });

  it('answers (a+)+$ against long values, 100 at once, 200 or 503 query_timeout, while /health keeps answering', async () => {
    const body = JSON.stringify({ query: { 'metadata.payload': { regex: '(a+)+$' } } });
    let storm = true;
    let healthy = 0;
    const poller = (async () => {
      while (storm) {
        const res = await fetch(`${w.url}/health`, { signal: AbortSignal.timeout(5_000) });
        expect(res.status).toBe(200);
        await res.text();
        healthy += 1;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const pool = new Pool(w.url, { connections: 100, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const results = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await pool.request({ path: '/api/query', method: 'POST', body });
        const json = (await res.body.json()) as { count?: number; error?: { code: string } };
        return { status: res.statusCode, json };
      }),
    );
    await pool.close();
    storm = false;
    await poller;
    for (const r of results) {
      expect([200, 503]).toContain(r.status);
      if (r.status === 200)
        expect(r.json.count).toBe(0); // "!" at the end: no value matches
      else expect(r.json.error?.code).toBe('query_timeout');
    }
    expect(results.some((r) => r.status === 200)).toBe(true);
    expect(healthy).toBeGreaterThan(0);
    // A pattern that does match is found, with RE2 semantics, on the same long values.
    const hit = await post(`${w.url}/api/query`, {
      query: { 'metadata.payload': { regex: 'a{100}!$' } },
      limit: 5,
    });
    expect(hit.status).toBe(200);
    expect(hit.json.count).toBe(5);
  });
});
