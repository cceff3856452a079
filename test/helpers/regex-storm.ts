// The hostile-regex storm both witness stores must survive: 100 catastrophic-backtracking queries
// at once against long values. What is checked is what a caller sees — every query answered, 200
// with no match or 503 query_timeout, /health answered meanwhile, the same query answered in full
// once the storm is over — never how fast: speed is the witness benchmark's business, and the 503
// and slicing paths are proven under a fake clock in witness-query-budget.test.ts.
import { Client, Pool } from 'undici';
import { expect } from 'vitest';
import { waitForValue } from './wait.js';
import { post } from './witness.js';

/** Four batches of 100 events whose payload makes a backtracking engine take exponential time. */
export async function logLongValues(url: string): Promise<void> {
  for (let batch = 0; batch < 4; batch++) {
    const events = Array.from({ length: 100 }, (_, i) => ({
      event: 'long_value',
      metadata: { payload: `${'a'.repeat(5000)}!`, i },
    }));
    expect((await post(`${url}/api/log`, events)).status).toBe(201);
  }
}

const HOSTILE = { query: { 'metadata.payload': { regex: '(a+)+$' } } };

export async function expectStormAnswered(url: string): Promise<void> {
  const body = JSON.stringify(HOSTILE);
  // Connections opened beforehand, so the storm is the service's work, not TCP set-up; /health on
  // a connection of its own, so it does not queue behind a query on the client side.
  const pool = new Pool(url, { connections: 100, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const health = new Client(url, { headersTimeout: 30_000, bodyTimeout: 30_000 });
  try {
    await Promise.all(
      Array.from({ length: 101 }, async (_, i) =>
        (await (i === 100 ? health : pool).request({ path: '/health', method: 'GET' })).body.text(),
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
    // Sent while all 100 queries are outstanding (nothing has been awaited since they were sent).
    expect(answered).toBe(0);
    const during = await health.request({ path: '/health', method: 'GET' });
    expect(during.statusCode).toBe(200);
    expect(((await during.body.json()) as { status: string }).status).toBe('ok');
    const results = await queries;
    for (const r of results) {
      expect([200, 503]).toContain(r.status);
      if (r.status === 200)
        expect(r.json.count).toBe(0); // "!" at the end: no value matches
      else expect(r.json.error?.code).toBe('query_timeout');
    }
  } finally {
    await Promise.allSettled([pool.close(), health.close()]);
  }
  // Alone, the same query is answered in full; a busy machine may cut an attempt at the budget, so
  // it is asked again until it is (bounded).
  let attempts = 0;
  const alone = await waitForValue(
    async () => {
      attempts++;
      const r = await post(`${url}/api/query`, HOSTILE);
      if (r.status === 503 && r.json?.error?.code === 'query_timeout' && attempts < 30) return undefined;
      return r;
    },
    'the hostile query answered in full once the storm is over',
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  expect(alone.status).toBe(200);
  expect(alone.json.count).toBe(0);
  // A pattern that does match is found, with RE2 semantics, on the same long values.
  const hit = await post(`${url}/api/query`, {
    query: { 'metadata.payload': { regex: 'a{100}!$' } },
    limit: 5,
  });
  expect(hit.status).toBe(200);
  expect(hit.json.count).toBe(5);
}
