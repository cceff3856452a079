import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/cli.js';
import { freePort, rssBytes, startSignalingProcess } from '../helpers/processes.js';
import { connect, getJson, TestClient } from '../helpers/signaling.js';
import { API_KEY, post, startWitness } from '../helpers/witness.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

describe('ifmesh signaling serve (a real process)', () => {
  // Exiting 0 by itself (nothing here sends SIGKILL) is what is checked; its drain timer bounds
  // how long that takes, which a timed assertion would only check on a quiet machine.
  it('on SIGTERM closes agents with 1012, writes its last witness events and exits 0', async () => {
    const w = await startWitness();
    try {
      const svc = await startSignalingProcess(['--state-dir', path.join(dir, 'state-term')], {
        IF_WITNESS_ENDPOINT: w.url,
        IF_WITNESS_API_KEY: API_KEY,
      });
      const a = await connect(svc.url);
      await a.register('agent-term');
      svc.kill('SIGTERM');
      expect((await a.closed).code).toBe(1012);
      expect(await svc.exited).toBe(0);
      const events = (
        await post(`${w.url}/api/query`, { query: { 'metadata.instance_id': svc.ready.instance_id } })
      ).json.results.map((e: { event: string }) => e.event);
      expect(events).toEqual([
        'signaling_server_started',
        'agent_registered',
        'signaling_server_stopped',
        'agent_left',
      ]);
    } finally {
      await w.stop();
    }
  });

  it('keeps serving when the witness is down, and spools its events', async () => {
    const state = path.join(dir, 'state-down');
    // A port taken and closed again: no witness answers there.
    const svc = await startSignalingProcess(['--state-dir', state], {
      IF_WITNESS_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
      IF_WITNESS_API_KEY: API_KEY,
    });
    const a = await connect(svc.url);
    await a.register('agent-nowitness');
    expect((await getJson(`${svc.ready.http_url}/agents`)).json.agents).toHaveLength(1);
    expect(await svc.stop()).toBe(0);
    const spooled = readFileSync(
      path.join(state, 'witness-spool', `signaling-${svc.ready.instance_id}.ndjson`),
      'utf8',
    )
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).event);
    expect(spooled).toEqual(
      expect.arrayContaining(['signaling_server_started', 'agent_registered', 'signaling_server_stopped']),
    );
  });

  it('serves wss:// and https:// with a certificate', async () => {
    const tls = path.join(ROOT, 'fixtures/tls');
    const svc = await startSignalingProcess([
      '--tls-cert',
      path.join(tls, 'test-cert.pem'),
      '--tls-key',
      path.join(tls, 'test-key.pem'),
    ]);
    try {
      expect(svc.url).toMatch(/^wss:\/\//);
      const c = new TestClient(svc.url, { rejectUnauthorized: false });
      await c.open();
      expect(await c.register('agent-tls')).toMatchObject({ type: 'registered' });
      c.close();
    } finally {
      await svc.stop();
    }
  });

  it('survives 1,000 idle sockets, slow headers, a 10 MB frame and 100 bad challenges with bounded RSS', async () => {
    const svc = await startSignalingProcess([
      '--register-timeout',
      '1500',
      '--headers-timeout',
      '1000',
      '--max-connections-per-ip',
      '5000',
    ]);
    try {
      const base = rssBytes(svc.pid);
      const idle: TestClient[] = [];
      for (let i = 0; i < 1000; i++) idle.push(new TestClient(svc.url));
      await Promise.all(idle.map((c) => c.open()));
      const withIdle = rssBytes(svc.pid);
      // slow headers: a request that never finishes its headers
      const slow = netConnect(Number(new URL(svc.url).port), '127.0.0.1');
      slow.write('GET /health HTTP/1.1\r\nHost: x\r\n');
      const slowClosed = new Promise<void>((resolve) => slow.on('close', () => resolve()));
      slow.on('error', () => {});
      let answer = '';
      slow.on('data', (d) => {
        answer += d;
      });
      // a 10 MB frame
      const big = await connect(svc.url);
      big.ws.send(Buffer.alloc(10 * 1024 * 1024, 97).toString());
      // 100 registrations with a signature over the wrong nonce
      const bad = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const c = await connect(svc.url);
          await c.next('hello');
          c.send(c.registerFrame('agent-bad', 'not-the-nonce'));
          return c.closed;
        }),
      );
      expect(bad.every((b) => b.code === 4401)).toBe(true);
      expect((await big.closed).code).toBe(1009);
      const health = await getJson(`${svc.ready.http_url}/health`);
      expect(health.json.status).toBe('ok');
      // every idle socket is closed by the registration timeout, and the slow request by the headers timeout
      const closes = await Promise.all(idle.map((c) => c.closed));
      expect(closes.every((c) => c.code === 4408)).toBe(true);
      await slowClosed;
      expect(answer).toContain('408 Request Timeout');
      const after = rssBytes(svc.pid);
      process.stderr.write(
        `signaling RSS: ${(base / 1e6).toFixed(0)} MB idle, ${(withIdle / 1e6).toFixed(0)} MB with 1,000 sockets, ${(after / 1e6).toFixed(0)} MB after the storm\n`,
      );
      expect(withIdle - base).toBeLessThan(100 * 1024 * 1024);
      expect(after).toBeLessThan(300 * 1024 * 1024);
      expect((await getJson(`${svc.ready.http_url}/health`)).json.status).toBe('ok');
    } finally {
      await svc.stop();
    }
  }, 60_000);
});
