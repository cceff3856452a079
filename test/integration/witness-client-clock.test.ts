// The client's waits go through its clock. Under a clock whose timers never fire on their own, the
// client can only make progress through wake-ups: a lost one (a close() arriving while the loop
// awaits observe() or a send) would hang the test instead of passing it.
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ClientClock, WitnessClient } from '../../src/clients/witness.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { tempDir } from '../helpers/cli.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

/** Time stands still: sleeps end only when their signal aborts. Counts the sleeps begun. */
function frozenClock(at = Date.parse('2026-01-01T00:00:00Z')) {
  const sleeps: number[] = [];
  const clock: ClientClock = {
    now: () => at,
    sleep: (ms, signal) =>
      new Promise<void>((resolve) => {
        sleeps.push(ms);
        if (signal?.aborted) return resolve();
        signal?.addEventListener('abort', () => resolve(), { once: true });
      }),
  };
  return { clock, sleeps };
}

let w: RunningWitness;
let dir: string;
let cleanup: () => void;
beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  w = await startWitness();
});
afterEach(async () => {
  await w.stop();
  cleanup();
});

describe('WitnessClient under an injected clock', () => {
  it('delivers, then closes while the loop waits for more events, without a timer firing', async () => {
    const { clock, sleeps } = frozenClock();
    const c = new WitnessClient({
      url: w.url,
      apiKey: API_KEY,
      producer: 'frozen',
      spoolDir: path.join(dir, 'spool'),
      state: openStateDir(path.join(dir, 'state')),
      clock,
    });
    for (let i = 0; i < 3; i++) c.log({ event: 'clock_probe', metadata: { i } });
    expect(await c.flush(59_000)).toBe(true);
    // Once the loop has looked at the new checkpoint it waits a minute for more: close() must end that.
    await vi.waitFor(() => expect(sleeps).toContain(60_000), { timeout: 10_000 });
    await c.close(58_000);
    expect(c.stats.sent).toBe(3);
    expect(sleeps.length).toBeGreaterThan(0); // the waits went through the injected clock
    const stored = await post(`${w.url}/api/query`, { query: { event: 'clock_probe' } });
    expect(stored.json.results.map((e: { timestamp: string }) => e.timestamp)).toEqual(
      Array(3).fill('2026-01-01T00:00:00.000Z'),
    );
  });

  it('times a flush out through the clock: false while the witness is unreachable', async () => {
    let fire: (() => void) | undefined;
    const clock: ClientClock = {
      now: () => 0,
      sleep: (ms, signal) =>
        new Promise<void>((resolve) => {
          // The flush's own timeout is the only sleep this test lets end, when it says so.
          if (ms === 5_000) fire = resolve;
          if (ms === 0) resolve();
          signal?.addEventListener('abort', () => resolve(), { once: true });
        }),
    };
    await w.stop();
    const c = new WitnessClient({
      url: w.url,
      apiKey: API_KEY,
      producer: 'frozen-down',
      spoolDir: path.join(dir, 'spool'),
      clock,
      retryMinMs: 1,
    });
    c.log({ event: 'clock_probe' });
    const flushed = c.flush(5_000);
    await expect.poll(() => c.stats.spooled, { timeout: 10_000 }).toBe(1);
    expect(fire).toBeDefined();
    fire!();
    expect(await flushed).toBe(false);
    await c.close(0);
    w = await startWitness();
  });
});
