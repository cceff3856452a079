// flush() says true only when the witness acknowledged (201) every event logged before the call:
// against a closed port, a witness answering 503, and a real witness process killed by SIGKILL
// while a batch is in flight. Whatever is not acknowledged waits in the spool and arrives once.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WitnessClient } from '../../src/clients/witness.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { tempDir } from '../helpers/cli.js';
import { freePort, type Service, startWitnessProcess } from '../helpers/processes.js';
import { API_KEY, post, startWitness } from '../helpers/witness.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

function spoolLines(spoolDir: string, producer: string): Record<string, unknown>[] {
  const file = path.join(spoolDir, `${producer}.ndjson`);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe('WitnessClient.flush and close', () => {
  it('against a closed port: false, the events counted and on disk, and close() returns', async () => {
    const spoolDir = path.join(dir, 'spool');
    // A port that was free a moment ago and is closed now.
    const c = new WitnessClient({
      url: `http://127.0.0.1:${await freePort()}`,
      apiKey: API_KEY,
      producer: 'closed-port',
      spoolDir,
      retryMinMs: 10,
      timeoutMs: 500,
    });
    for (let i = 0; i < 3; i++) c.log({ event: 'flush_probe', metadata: { i } });
    expect(await c.flush(300)).toBe(false);
    // The wait was cut short by close(), wherever the loop stood (backoff, send, key check).
    await c.close(50);
    expect(c.stats).toEqual({ sent: 0, spooled: 3, rejected: 0 });
    expect(spoolLines(spoolDir, 'closed-port').map((e) => (e.metadata as { i: number }).i)).toEqual([
      0, 1, 2,
    ]);
  });

  it('against a witness answering 503: false, nothing dropped, and all delivered once it recovers', async () => {
    const witnessDb = path.join(dir, 'witness.db');
    const port = await freePort();
    const received: number[] = [];
    // A real HTTP server on loopback that refuses every batch with 503, as an overloaded witness does.
    const busy = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        if (req.url === '/api/log') received.push(JSON.parse(body).length);
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"unavailable","message":"busy"}}');
      });
    });
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', r));
    const spoolDir = path.join(dir, 'spool');
    const errors: string[] = [];
    const c = new WitnessClient({
      url: `http://127.0.0.1:${port}`,
      apiKey: API_KEY,
      producer: 'busy',
      spoolDir,
      retryMinMs: 10,
      retryMaxMs: 50,
      onError: (e) => errors.push(e.message),
    });
    for (let i = 0; i < 5; i++) c.log({ event: 'flush_probe', metadata: { i } });
    await vi.waitFor(() => expect(received.length).toBeGreaterThanOrEqual(2), { timeout: 10_000 });
    expect(await c.flush(100)).toBe(false);
    expect(errors.some((m) => m.includes('503'))).toBe(true);
    expect(c.stats.sent).toBe(0);
    expect(c.stats.spooled).toBe(5);
    await c.close(50);
    expect(spoolLines(spoolDir, 'busy')).toHaveLength(5);
    await new Promise<void>((r) => busy.close(() => r()));

    // The real witness takes the address; a new client (the next run) replays the spool, in order.
    const svc = await startWitnessProcess(witnessDb, ['--port', String(port)]);
    try {
      const next = new WitnessClient({
        url: svc.url,
        apiKey: API_KEY,
        producer: 'busy',
        spoolDir,
      });
      next.log({ event: 'flush_probe', metadata: { i: 5 } });
      expect(await next.flush(20_000)).toBe(true);
      await next.close();
      const stored = await post(`${svc.url}/api/query`, { query: { event: 'flush_probe' } });
      expect(stored.json.results.map((e: { metadata: { i: number } }) => e.metadata.i)).toEqual([
        0, 1, 2, 3, 4, 5,
      ]);
      expect(existsSync(path.join(spoolDir, 'busy.ndjson'))).toBe(false);
    } finally {
      await svc.stop();
    }
  });

  it('against a witness killed mid-batch: false, nothing acknowledged lost, everything stored exactly once after it returns', async () => {
    const db = path.join(dir, 'witness.db');
    const port = await freePort();
    const start = () => startWitnessProcess(db, ['--port', String(port)]);
    let svc: Service = await start();
    const spoolDir = path.join(dir, 'spool');
    const c = new WitnessClient({
      url: svc.url,
      apiKey: API_KEY,
      producer: 'killed',
      spoolDir,
      state: openStateDir(path.join(dir, 'state')),
      retryMinMs: 20,
      retryMaxMs: 200,
      timeoutMs: 5_000,
    });
    try {
      for (let i = 0; i < 50; i++) c.log({ event: 'kill_probe', metadata: { n: i } });
      expect(await c.flush(20_000)).toBe(true);
      const acknowledged = c.stats.sent;
      expect(acknowledged).toBe(50);
      // Until the witness's key was checked, the first events waited on disk.
      const spooledBefore = c.stats.spooled;

      // Freeze the witness so that the next batch stays in flight, then kill it there.
      svc.kill('SIGSTOP');
      for (let i = 50; i < 300; i++) c.log({ event: 'kill_probe', metadata: { n: i } });
      await vi.waitFor(() => expect(c.sending).toBe(true), { timeout: 10_000 });
      svc.kill('SIGKILL');
      await svc.exited;
      expect(await c.flush(200)).toBe(false);
      await vi.waitFor(() => expect(c.stats.spooled - spooledBefore).toBe(250), { timeout: 10_000 });
      expect(c.stats.sent).toBe(acknowledged);

      svc = await start();
      c.log({ event: 'kill_probe', metadata: { n: 300 } });
      expect(await c.flush(30_000)).toBe(true);
    } finally {
      await c.close();
    }
    const stored = await post(`${svc.url}/api/query`, { query: { event: 'kill_probe' }, limit: 10_000 });
    // The 50 acknowledged before the kill survived it; the rest arrived once each, in order.
    expect(stored.json.results.map((e: { metadata: { n: number } }) => e.metadata.n)).toEqual(
      Array.from({ length: 301 }, (_, i) => i),
    );
    expect(existsSync(path.join(spoolDir, 'killed.ndjson'))).toBe(false);
    await svc.stop();
  }, 60_000);

  it('replays what an earlier process left, a line torn by its crash included, before saying true', async () => {
    const w = await startWitness();
    try {
      const spoolDir = path.join(dir, 'spool');
      mkdirSync(spoolDir, { recursive: true });
      const left = [0, 1].map((i) => JSON.stringify({ event: 'left_behind', idempotency_key: `lb-${i}` }));
      // The crash came in the middle of appending a third event.
      writeFileSync(path.join(spoolDir, 'crashed.ndjson'), `${left.join('\n')}\n{"event":"left_beh`);
      const c = new WitnessClient({ url: w.url, apiKey: API_KEY, producer: 'crashed', spoolDir });
      c.log({ event: 'after_restart' });
      expect(await c.flush(20_000)).toBe(true);
      await c.close();
      const stored = await post(`${w.url}/api/query`, { query: {} });
      // In the order they were stored (query results are in timestamp order, and these two had none).
      const byId = [...stored.json.results].sort((x: { id: number }, y: { id: number }) => x.id - y.id);
      expect(byId.map((e: { event: string }) => e.event)).toEqual([
        'left_behind',
        'left_behind',
        'after_restart',
      ]);
      expect(existsSync(path.join(spoolDir, 'crashed.ndjson'))).toBe(false);
    } finally {
      await w.stop();
    }
  });
});
