import type { Clock } from '../../src/util/clock.js';
import { waitFor as waitUntil } from '../../src/util/wait.js';

// The real timers, captured at load, so that waiting still works in a test that fakes the global
// timers (vi.useFakeTimers) to drive the code under test.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realNow = Date.now;
const wallClock: Clock = {
  now: () => realNow(),
  sleep: (ms) => new Promise((resolve) => realSetTimeout(resolve, ms)),
  setTimeout: (fn, ms) => realSetTimeout(fn, ms),
  clearTimeout: (t) => realClearTimeout(t as NodeJS.Timeout | undefined),
};

/**
 * Waits until `condition` holds, checking every `intervalMs`, and fails naming `what` after
 * `timeoutMs` (src/util/wait.ts's waitFor, on the real clock). Tests wait for the state they need
 * instead of sleeping and hoping; the timeout only bounds a failing test, so a slow machine waits
 * longer but never fails a correct one sooner.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 10_000, intervalMs = 10 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  if (!(await waitUntil(condition, { timeoutMs, intervalMs }, wallClock)))
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Resolves with `value()` once it is defined (see waitFor). */
export async function waitForValue<T>(
  value: () => T | undefined | Promise<T | undefined>,
  what: string,
  opts?: { timeoutMs?: number; intervalMs?: number },
): Promise<T> {
  let got: T | undefined;
  await waitFor(
    async () => {
      got = await value();
      return got !== undefined;
    },
    what,
    opts,
  );
  return got as T;
}

/** Keeps this thread busy for `ms` without yielding, as a burst of synchronous work does. */
export function blockEventLoop(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}
