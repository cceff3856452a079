// The request/reply thread under the witness's scans: a reply that does not come by its timeout is
// answered with the caller's error (a query's 503, on time), and a thread that died says so, so the
// store can make a new one instead of failing every later query.
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerThread } from '../../src/services/witness/worker-thread.js';

// Echoes a request after `delayMs`; exits the thread on { exit: true }; 'close' ends it.
const SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m === 'close') return parentPort.close();
  if (m.exit) process.exit(3);
  setTimeout(() => parentPort.postMessage({ seq: m.seq, echo: m.value }), m.delayMs);
});
`;

type Reply = { seq: number; echo?: string; error?: string };
const threads: WorkerThread<Reply>[] = [];
const start = () => {
  const t = new WorkerThread<Reply>(SOURCE, {}, 'test');
  threads.push(t);
  return t;
};
afterEach(async () => {
  await Promise.all(threads.splice(0).map((t) => t.close()));
});

describe('WorkerThread', () => {
  it('answers a request with the reply that matches it', async () => {
    const t = start();
    const [a, b] = await Promise.all([
      t.request({ value: 'a', delayMs: 20 }),
      t.request({ value: 'b', delayMs: 0 }),
    ]);
    expect([a.echo, b.echo]).toEqual(['a', 'b']);
  });

  it('rejects with the caller error when no reply comes in time, and goes on serving', async () => {
    const t = start();
    const late = t.request({ value: 'late', delayMs: 300 }, [], {
      ms: 10,
      error: () => new Error('deadline'),
    });
    await expect(late).rejects.toThrow('deadline');
    expect((await t.request({ value: 'next', delayMs: 0 })).echo).toBe('next');
    expect(t.failed).toBe(false);
  });

  it('says it failed once the thread is gone, and rejects what was waiting and what comes next', async () => {
    const t = start();
    const waiting = t.request({ value: 'x', delayMs: 5_000 });
    void t.request({ exit: true }).catch(() => {});
    await expect(waiting).rejects.toThrow('the witness test thread stopped');
    expect(t.failed).toBe(true);
    await expect(t.request({ value: 'y', delayMs: 0 })).rejects.toThrow('stopped');
  });
});
