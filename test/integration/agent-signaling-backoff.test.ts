import { afterEach, describe, expect, it, vi } from 'vitest';
import { SignalingClient } from '../../src/agent/signaling-client.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { freePort } from '../helpers/processes.js';
import { startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('agent signaling client', () => {
  it('tries every URL in order, backs off exponentially when none answers, and registers once one does', async () => {
    // Two ports taken and closed again: nothing listens there, whatever else runs on this machine.
    const dead = [`ws://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
    // Started on real timers; it registers the client below while the timers are fake.
    const sig = await startSignaling();
    // Fake timers and Date: the backoff sleeps run on the fake clock, which only moves when the
    // test advances it to the next timer, so each gap between cycles is exactly the delay chosen.
    // Connection attempts are real sockets, refused at once.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const failures: { url: string; at: number }[] = [];
    let connected = '';
    const keys = generateKeyPair();
    const c = new SignalingClient({
      urls: [...dead],
      agentId: 'backoff-1',
      identity: () => keys,
      metadata: {},
      failoverTimeoutMs: 1_000,
      backoffBaseMs: 100,
      backoffMaxMs: 10_000,
      rejectUnauthorized: true,
      onFrame: () => {},
      onEvent: (name, meta) => {
        if (name === 'signaling_connection_failed') failures.push({ url: String(meta.url), at: Date.now() });
        if (name === 'signaling_connected') connected = String(meta.url);
      },
    });
    const t0 = Date.now();
    c.start();
    try {
      for (let cycle = 1; cycle <= 4; cycle++) {
        await waitFor(() => failures.length === cycle * 2, `cycle ${cycle} to try both URLs`);
        if (cycle < 4) await vi.advanceTimersToNextTimerAsync();
      }
      expect(failures.map((f) => f.url)).toEqual(
        [...dead, ...dead, ...dead, ...dead].map((u) => u.replace('http', 'ws')),
      );
      // Each cycle starts after the previous one's delay: 100, 200, 400 ms.
      expect(failures.filter((_, i) => i % 2 === 0).map((f) => f.at - t0)).toEqual([0, 100, 300, 700]);
      (c as unknown as { o: { urls: string[] } }).o.urls.push(sig.url);
      // The client sleeps 800 ms before its next cycle, which now reaches the live instance.
      await vi.advanceTimersToNextTimerAsync();
      await waitFor(() => connected !== '', 'a registration with the live instance');
      expect(connected).toBe(sig.url);
      expect(c.registered).toBe(true);
    } finally {
      vi.useRealTimers();
      await c.close();
      await sig.stop();
    }
  });
});
