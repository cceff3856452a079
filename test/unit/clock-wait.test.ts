import { describe, expect, it } from 'vitest';
import { waitFor } from '../../src/util/wait.js';
import { FakeClock } from '../helpers/clock.js';

describe('waitFor on a fake clock', () => {
  it('polls at its interval and gives up exactly at the timeout, with no wall-clock wait', async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const seen: number[] = [];
    const result = waitFor(
      () => {
        seen.push(clock.now() - t0);
        return false;
      },
      { timeoutMs: 1_000, intervalMs: 300 },
      clock,
    );
    let done: boolean | undefined;
    void result.then((r) => {
      done = r;
    });
    await clock.advance(999);
    expect(done).toBeUndefined();
    await clock.advance(1);
    expect(done).toBe(false);
    // tried at once, every 300 ms, and a last time at the deadline
    expect(seen).toEqual([0, 300, 600, 900, 1_000]);
  });

  it('resolves true as soon as the condition holds, and an abort ends the wait', async () => {
    const clock = new FakeClock();
    let ready = false;
    const ok = waitFor(() => ready, { timeoutMs: 60_000, intervalMs: 100 }, clock);
    await clock.advance(250);
    ready = true;
    await clock.advance(100);
    expect(await ok).toBe(true);

    const ac = new AbortController();
    const aborted = waitFor(() => false, { timeoutMs: 60_000, intervalMs: 100 }, clock, ac.signal);
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect(clock.pending).toBe(0);
  });

  it('fires chained timers in time order within one advance', async () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    clock.setTimeout(() => {
      fired.push('a@100');
      clock.setTimeout(() => fired.push('c@150'), 50);
    }, 100);
    clock.setTimeout(() => fired.push('b@120'), 120);
    const cancelled = clock.setTimeout(() => fired.push('never'), 130);
    clock.clearTimeout(cancelled);
    await clock.advance(200);
    expect(fired).toEqual(['a@100', 'b@120', 'c@150']);
  });
});
