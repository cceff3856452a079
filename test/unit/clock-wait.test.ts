import { describe, expect, it } from 'vitest';
import { sleepWhileResponsive, systemClock } from '../../src/util/clock.js';
import { waitFor } from '../../src/util/wait.js';
import { FakeClock } from '../helpers/clock.js';
import { blockEventLoop } from '../helpers/wait.js';

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

describe('sleepWhileResponsive: a budget that does not count time the event loop was kept busy', () => {
  it('outlasts a block of the event loop that a plain sleep of the same length does not', async () => {
    let plain = false;
    let ours = false;
    void systemClock.sleep(1_000).then(() => {
      plain = true;
    });
    const responsive = sleepWhileResponsive(systemClock, 1_000, undefined, 500).then(() => {
      ours = true;
    });
    // Busy past the whole budget, as a preflight check importing every package is on a loaded host.
    blockEventLoop(1_200);
    await new Promise((r) => setTimeout(r, 0));
    expect(plain).toBe(true);
    // The block counted as one slice of 500 ms: the other is still to come.
    expect(ours).toBe(false);
    await responsive;
    expect(ours).toBe(true);
  });

  it('ends at its budget on a fake clock, and stops when aborted', async () => {
    const clock = new FakeClock();
    let done = false;
    void sleepWhileResponsive(clock, 1_000, undefined, 300).then(() => {
      done = true;
    });
    await clock.advance(999);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(done).toBe(true);
    const stop = new AbortController();
    const aborted = sleepWhileResponsive(clock, 1_000, stop.signal).catch(() => 'aborted');
    await clock.advance(500);
    stop.abort();
    expect(await aborted).toBe('aborted');
  });
});
