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

/** Waits for `p` at most `ms` on `clock`: true if it settled in time. Its rejection is swallowed. */
export async function within(p: Promise<unknown> | undefined, ms: number, clock: Clock): Promise<boolean> {
  if (!p) return true;
  const stop = new AbortController();
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      clock.sleep(ms, stop.signal).then(() => false),
    ]);
  } finally {
    stop.abort();
  }
}
