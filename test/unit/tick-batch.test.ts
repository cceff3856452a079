import { describe, expect, it } from 'vitest';
import { TickBatch } from '../../src/services/signaling/tick-batch.js';

describe('TickBatch', () => {
  it('runs the calls of one turn together, in call order, at most `max` per run', async () => {
    const runs: number[][] = [];
    const b = new TickBatch<number, string>(async (xs) => {
      runs.push(xs);
      return xs.map((x) => `#${x}`);
    }, 3);
    const out = await Promise.all([1, 2, 3, 4, 5].map((x) => b.add(x)));
    expect(out).toEqual(['#1', '#2', '#3', '#4', '#5']);
    expect(runs).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    // A later turn is a new batch.
    expect(await b.add(6)).toBe('#6');
    expect(runs.at(-1)).toEqual([6]);
  });

  it('fails every call of a batch whose run throws, even before returning a promise, or answers short', async () => {
    const sync = new TickBatch<number, number>(() => {
      throw new Error('down');
    });
    const a = await Promise.allSettled([sync.add(1), sync.add(2)]);
    expect(a.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    const short = new TickBatch<number, number>(async () => [10]);
    const b = await Promise.allSettled([short.add(1), short.add(2)]);
    expect(b[0]).toEqual({ status: 'fulfilled', value: 10 });
    expect(b[1]?.status).toBe('rejected');
  });
});
