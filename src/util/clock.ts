// The clock lives below every layer (ops, agent, services) so each can take one; src/cli/context
// re-exports it as part of the Context.

/** An opaque timer handle: Node's Timeout for the system clock, the fake clock's own in tests. */
export type TimerHandle = object;

/**
 * Time as an input (STYLE rule 12): every op reads time and waits only through this, so a test
 * drives canary windows, backoff and grace periods with a fake clock instead of waiting.
 */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(timer: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout | undefined),
};

/**
 * Resolves once `ms` of time in which this process could run has passed: time is counted in slices
 * of `sliceMs`, and a slice that overran (the event loop was busy with other work, such as another
 * preflight check loading every npm package) counts as one slice. A budget measured this way still
 * ends about `ms` after it started when the event loop is free, and does not end early because
 * this process kept the work it bounds from running.
 */
export async function sleepWhileResponsive(
  clock: Clock,
  ms: number,
  signal?: AbortSignal,
  sliceMs = 100,
): Promise<void> {
  for (let counted = 0; counted < ms; ) {
    const slice = Math.min(sliceMs, ms - counted);
    await clock.sleep(slice, signal);
    counted += slice;
  }
}
