import type { Clock } from './clock.js';

export interface WaitOptions {
  timeoutMs: number;
  intervalMs: number;
}

/**
 * Polls `cond` until it holds (true) or `timeoutMs` has passed on `clock` (false). `cond` is always
 * tried at least once, and once more at the deadline, so a slow check cannot lose its last chance.
 * An abort ends the wait with the signal's reason.
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  o: WaitOptions,
  clock: Clock,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = clock.now() + o.timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if (await cond()) return true;
    const left = deadline - clock.now();
    if (left <= 0) return false;
    await clock.sleep(Math.min(o.intervalMs, left), signal);
  }
}
