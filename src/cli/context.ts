import type { Readable, Writable } from 'node:stream';

/** A clock that tests can drive: canary, backoff and healing read time only through it. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export type OutStream = Writable & { isTTY?: boolean };

/** All the I/O a command may do. bin/ builds the real one; tests build their own. */
export interface Context {
  env: Record<string, string | undefined>;
  cwd: string;
  stdin: Readable;
  stdout: OutStream;
  stderr: OutStream;
  clock: Clock;
  signal: AbortSignal;
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
};
