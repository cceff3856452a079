import { describe, expect, it } from 'vitest';
import { SignalingClient } from '../../src/agent/signaling-client.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { startSignaling } from '../helpers/signaling.js';

describe('agent signaling client', () => {
  it('tries every URL in order, backs off exponentially when none answers, and registers once one does', async () => {
    const failures: number[] = [];
    const order: string[] = [];
    let connected = '';
    const keys = generateKeyPair();
    const c = new SignalingClient({
      urls: ['ws://127.0.0.1:9', 'http://127.0.0.1:10'],
      agentId: 'backoff-1',
      identity: () => keys,
      metadata: {},
      failoverTimeoutMs: 1_000,
      backoffBaseMs: 100,
      backoffMaxMs: 10_000,
      rejectUnauthorized: true,
      onFrame: () => {},
      onEvent: (name, meta) => {
        if (name === 'signaling_connection_failed') {
          failures.push(performance.now());
          order.push(String(meta.url));
        }
        if (name === 'signaling_connected') connected = String(meta.url);
      },
    });
    c.start();
    await new Promise((r) => setTimeout(r, 900));
    // cycles at t≈0, +100, +200(×2=…): 2 URLs per cycle, delays 100, 200, 400 ms
    expect(order.slice(0, 4)).toEqual([
      'ws://127.0.0.1:9',
      'ws://127.0.0.1:10',
      'ws://127.0.0.1:9',
      'ws://127.0.0.1:10',
    ]);
    const cycleStarts = failures.filter((_, i) => i % 2 === 0);
    const gaps = cycleStarts.slice(1).map((t, i) => t - cycleStarts[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(2);
    expect(gaps[1]!).toBeGreaterThan(gaps[0]! * 1.5);
    const sig = await startSignaling();
    try {
      (c as unknown as { o: { urls: string[] } }).o.urls.push(sig.url);
      const t0 = Date.now();
      while (!connected && Date.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 20));
      expect(connected).toBe(sig.url);
      expect(c.registered).toBe(true);
    } finally {
      await c.close();
      await sig.stop();
    }
  });
});
