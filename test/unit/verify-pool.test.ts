import { afterEach, describe, expect, it } from 'vitest';
import { createSigner, generateKeyPair } from '../../src/crypto/ed25519.js';
import { VerifyPool } from '../../src/crypto/verify-pool.js';

const pools: VerifyPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function pool(workers: number): VerifyPool {
  const p = new VerifyPool({ workers });
  pools.push(p);
  return p;
}

const alice = generateKeyPair();
const bob = generateKeyPair();
const signAlice = createSigner(alice.seed);
const signBob = createSigner(bob.seed);

/** n jobs over two keys; every third signature is made by the wrong key, every fifth data is altered. */
function jobs(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const key = i % 2 ? alice : bob;
    const data = new TextEncoder().encode(`message ${i} ${'x'.repeat(i % 50)}`);
    const right = i % 2 ? signAlice : signBob;
    const wrong = i % 2 ? signBob : signAlice;
    const signature = (i % 3 === 0 ? wrong : right).sign(data);
    const sent = i % 5 === 0 ? new Uint8Array([...data, 33]) : data;
    return { publicKey: key.publicKey, data: sent, signature, holds: i % 3 !== 0 && i % 5 !== 0 };
  });
}

describe('VerifyPool', () => {
  it.each([1, 2])('gives each job its own verdict on %i worker thread(s)', async (workers) => {
    const p = pool(workers);
    const all = jobs(600);
    const verdicts = await Promise.all(
      all.map((j) => new Promise<boolean>((resolve) => p.submit(j.publicKey, j.data, j.signature, resolve))),
    );
    expect(verdicts).toEqual(all.map((j) => j.holds));
    expect(p.counts.pooled).toBe(600);
    expect(p.busy).toBe(0);
  });

  it('verifies inline while idle, offloads when busy, once a worker is up', async () => {
    const p = pool(1);
    // idle: inline
    expect(p.shouldOffload(0, 0)).toBe(false);
    // busy (the caller verified one inline this turn) before any worker is up: still inline, so
    // that no message waits on a thread starting
    expect(p.shouldOffload(0, 1)).toBe(false);
    expect(await p.warm()).toBe(true);
    expect(p.shouldOffload(0, 0)).toBe(false);
    expect(p.shouldOffload(0, 1)).toBe(true);
    // a caller holding messages for ordering always queues behind them
    expect(p.shouldOffload(1, 0)).toBe(true);
  });

  it('with no workers never offloads', () => {
    const p = pool(0);
    expect(p.shouldOffload(5, 5)).toBe(false);
  });

  it('answers jobs in flight when it closes', async () => {
    const p = pool(1);
    const all = jobs(50);
    const verdicts = Promise.all(
      all.map((j) => new Promise<boolean>((resolve) => p.submit(j.publicKey, j.data, j.signature, resolve))),
    );
    await new Promise((r) => setImmediate(r));
    await p.close();
    expect(await verdicts).toEqual(all.map((j) => j.holds));
  });
});
