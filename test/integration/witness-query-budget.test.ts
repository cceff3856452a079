import { afterEach, describe, expect, it } from 'vitest';
import { post, type RunningWitness, startWitness } from '../helpers/witness.js';

// The witness promises that a query is answered 503 `query_timeout` once its budget (850 ms) has passed since
// it arrived, and that a long scan yields every slice (2 ms) so other requests are served meanwhile. Both
// are proven here under a fake monotonic clock that advances a fixed step each time it is read (the
// store reads it once per scanned row), so "time" is a count of work done and the outcome does not
// depend on how fast or busy this machine is.
function steppingClock(stepMs: number) {
  const clock = {
    reads: 0,
    now: () => {
      clock.reads += 1;
      return clock.reads * stepMs;
    },
  };
  return clock;
}

async function witnessWith(clock: { now: () => number }, queryBudgetMs?: number): Promise<RunningWitness> {
  return startWitness(
    { monotonicNow: clock.now, ...(queryBudgetMs ? { queryBudgetMs } : {}) },
    { store: { monotonicNow: clock.now } },
  );
}

async function logMany(w: RunningWitness, n: number): Promise<void> {
  for (let start = 0; start < n; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, n - start) }, (_, i) => ({
      event: 'long_scan',
      metadata: { i: start + i, note: 'needle-free' },
    }));
    expect((await post(`${w.url}/api/log`, batch)).status).toBe(201);
  }
}

// Matches nothing, so the scan visits every row.
const hostile = { query: { 'metadata.note': { regex: 'zzz' } } };

let w: RunningWitness | undefined;
afterEach(async () => {
  await w?.stop();
  w = undefined;
});

describe('query budget under a fake clock', () => {
  it('answers 503 query_timeout when a scan is still running 850 ms after the query arrived', async () => {
    // 1 ms per read: 2,000 rows take 2,000 fake ms, past the default 850 ms budget.
    w = await witnessWith(steppingClock(1));
    await logMany(w, 2000);
    const r = await post(`${w.url}/api/query`, hostile);
    expect(r.status).toBe(503);
    expect(r.json.error.code).toBe('query_timeout');
    expect(r.json.error.message).toContain('850 ms');
    const metrics = await (await fetch(`${w.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    expect(metrics).toMatch(/^witness_query_timeouts_total 1$/m);
  });

  it('answers the same scan in full when it fits the budget', async () => {
    // 0.1 ms per read: 2,000 rows take about 200 fake ms.
    w = await witnessWith(steppingClock(0.1));
    await logMany(w, 2000);
    const r = await post(`${w.url}/api/query`, { query: { event: 'long_scan' }, limit: 5000 });
    expect(r.status).toBe(200);
    expect(r.json.count).toBe(2000);
    expect(r.json.results.map((e: { metadata: { i: number } }) => e.metadata.i)).toEqual(
      Array.from({ length: 2000 }, (_, i) => i),
    );
  });

  it('yields every slice, so /health is answered while a long scan runs', async () => {
    // 0.1 ms per read: a 2 ms slice is ~20 rows, so 20,000 rows are ~1,000 slices; the budget is
    // raised so that the scan completes.
    const clock = steppingClock(0.1);
    w = await witnessWith(clock, 60_000);
    await logMany(w, 20_000);
    const order: string[] = [];
    const before = clock.reads;
    const query = post(`${w.url}/api/query`, hostile).then((r) => {
      order.push('query');
      return r;
    });
    // Wait until the scan is under way (only it reads the clock once per row); a scan that never
    // yielded would be finished by the time this loop runs again.
    for (let turns = 0; clock.reads < before + 200 && !order.includes('query') && turns < 100_000; turns++)
      await new Promise((r) => setImmediate(r));
    const health = await fetch(`${w.url}/health`, { signal: AbortSignal.timeout(10_000) });
    order.push('health');
    expect(health.status).toBe(200);
    const r = await query;
    expect(r.status).toBe(200);
    expect(r.json.count).toBe(0);
    expect(order).toEqual(['health', 'query']);
  });
});
