// Captured at load, so that waiting still works in a test that fakes the global timers.
const realSetTimeout = globalThis.setTimeout;
const realNow = Date.now;

/**
 * Waits until `condition` holds, checking every `intervalMs`, and fails naming `what` after
 * `timeoutMs`. Tests wait for the state they need instead of sleeping and hoping; the timeout only
 * bounds a failing test, so a slow machine waits longer but never fails a correct one sooner.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 10_000, intervalMs = 10 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = realNow() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (realNow() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => realSetTimeout(r, intervalMs));
  }
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
