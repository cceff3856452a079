// The pieces of `ifmesh load --signaling-only` that need no socket: the barrier its processes meet
// at (a process that died must not leave the others waiting), and the --source-addresses parser.
import { describe, expect, it } from 'vitest';
import { sourceAddressesFlag } from '../../commands/load/options.js';
import { UsageError } from '../../src/errors.js';
import { Barrier, party } from '../../src/ops/agent/barrier.js';

const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('Barrier', () => {
  it('lets the parties on only when the last arrives, after onPass has settled', async () => {
    const order: string[] = [];
    let finish: () => void = () => {};
    const b = new Barrier(2, () => {
      order.push('onPass');
      return new Promise<void>((r) => {
        finish = r;
      });
    });
    const first = b.arrive().then(() => order.push('first'));
    expect(await settled(first)).toBe(false);
    const second = b.arrive().then(() => order.push('second'));
    expect(await settled(second)).toBe(false);
    finish();
    await Promise.all([first, second]);
    expect(order).toEqual(['onPass', 'first', 'second']);
  });

  it('a party that ends early arrives at every barrier it had not passed, once', async () => {
    const [opened, registered] = [new Barrier(2), new Barrier(2)];
    const alive = party([opened, registered]);
    const dead = party([opened, registered]);
    void dead.arrive(opened);
    await alive.arrive(opened);
    dead.leave();
    dead.leave();
    await alive.arrive(registered);
    expect(await settled(registered.passed)).toBe(true);
  });

  it('keeps what onPass threw, and the parties still go on', async () => {
    const b = new Barrier(1, () => {
      throw new Error('measurement failed');
    });
    await b.arrive();
    expect((b.error as Error).message).toBe('measurement failed');
  });
});

describe('--source-addresses', () => {
  it('takes a last-octet range and a comma list', () => {
    expect(sourceAddressesFlag('127.0.0.2-5')).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
    expect(sourceAddressesFlag('127.0.0.9, ::1,127.0.1.1-2')).toEqual([
      '127.0.0.9',
      '::1',
      '127.0.1.1',
      '127.0.1.2',
    ]);
    expect(sourceAddressesFlag(undefined)).toEqual([]);
  });

  it('refuses anything else as a usage error naming the flag and the item', () => {
    for (const bad of ['127.0.0.300', '127.0.0.5-2', 'localhost', '127.0.0.2-300', ''])
      expect(() => sourceAddressesFlag(bad), bad).toThrow(UsageError);
    expect(() => sourceAddressesFlag('127.0.0.2,nope')).toThrow(
      /--source-addresses 127\.0\.0\.2,nope: "nope"/,
    );
  });
});
