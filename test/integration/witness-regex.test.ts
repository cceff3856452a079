import path from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { type Service, startWitnessProcess } from '../helpers/processes.js';
import { post } from '../helpers/witness.js';

// The witness runs as its own process, as in production, so the test's own HTTP work does not
// share its event loop.
let w: Service;
let cleanup: () => void;
beforeAll(async () => {
  const t = tempDir();
  cleanup = t.cleanup;
  w = await startWitnessProcess(path.join(t.dir, 'witness.db'));
  // Long values that make a backtracking engine take exponential time on (a+)+$.
  for (let batch = 0; batch < 4; batch++) {
    const events = Array.from({ length: 100 }, (_, i) => ({
      event: 'long_value',
      metadata: { payload: `${'a'.repeat(5000)}!`, i },
    }));
    expect((await post(`${w.url}/api/log`, events)).status).toBe(201);
  }
});
afterAll(async () => {
  await w?.stop();
  cleanup?.();
});

describe('hostile regular expressions', () => {
  it('refuses a pattern over 256 characters with 400', async () => {
    const r = await post(`${w.url}/api/query`, {
      query: { 'metadata.payload': { regex: `${'a'.repeat(257)}` } },
    });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain('query.metadata.payload.regex');
  });

  // How fast the answers come is a benchmark's business; that a query past its budget is answered
  // 503 and that scans yield is proven under a fake clock in witness-query-budget.test.ts. Here: a
  // storm of catastrophic-backtracking patterns is answered (never hangs), and /health still is.
  it('answers (a+)+$ against long values, 100 at once, while /health keeps answering', async () => {
    const body = JSON.stringify({ query: { 'metadata.payload': { regex: '(a+)+$' } } });
    // 100 connections opened beforehand, so the storm is the service's work, not TCP set-up.
    const pool = new Pool(w.url, { connections: 100, headersTimeout: 10_000, bodyTimeout: 10_000 });
    await Promise.all(
      Array.from({ length: 100 }, async () =>
        (await pool.request({ path: '/health', method: 'GET' })).body.text(),
      ),
    );
    let answered = 0;
    const queries = Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await pool.request({ path: '/api/query', method: 'POST', body });
        const json = (await res.body.json()) as { count?: number; error?: { code: string } };
        answered++;
        return { status: res.statusCode, json };
      }),
    );
    // /health answered while queries were still outstanding.
    const res = await fetch(`${w.url}/health`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    await res.text();
    const healthWhileBusy = answered < 100;
    const results = await queries;
    await pool.close();
    for (const r of results) {
      expect([200, 503]).toContain(r.status);
      if (r.status === 200)
        expect(r.json.count).toBe(0); // "!" at the end: no value matches
      else expect(r.json.error?.code).toBe('query_timeout');
    }
    expect(results.some((r) => r.status === 200)).toBe(true);
    expect(healthWhileBusy).toBe(true);
  });
});
