// The client never loses an event: 10,000 events from two producers while the witness process is
// killed and restarted twice; afterwards exactly 10,000 are stored, in order per producer.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WitnessClient } from '../../src/clients/witness.js';
import { run, tempDir } from '../helpers/cli.js';
import { freePort, type Service, startWitnessProcess } from '../helpers/processes.js';
import { API_KEY, post } from '../helpers/witness.js';
import { recordFigure } from './figures.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('witness client spool', () => {
  it('stores exactly 10,000 events, in order per producer, across two kill -9 and restarts', async () => {
    const db = path.join(dir, 'witness.db');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const start = () => startWitnessProcess(db, ['--port', String(port)]);
    let svc: Service = await start();
    const spoolDir = path.join(dir, 'spool');
    const errors: string[] = [];
    const clients = ['producer-a', 'producer-b'].map(
      (producer) =>
        new WitnessClient({
          url,
          apiKey: API_KEY,
          producer,
          spoolDir,
          retryMinMs: 50,
          retryMaxMs: 400,
          timeoutMs: 2_000,
          onError: (e) => errors.push(e.message),
        }),
    );
    const streaming = (async () => {
      for (let i = 0; i < 5_000; i++) {
        for (const [p, c] of clients.entries())
          c.log({ event: 'spool_probe', metadata: { producer: p, n: i } });
        if (i % 100 === 99) await sleep(25);
      }
    })();
    for (let round = 0; round < 2; round++) {
      await sleep(350);
      svc.kill('SIGKILL');
      await svc.exited;
      await sleep(400);
      svc = await start();
    }
    await streaming;
    const flushed = [];
    for (const c of clients) flushed.push(await c.flush(30_000));
    for (const c of clients) await c.close();
    expect(flushed).toEqual([true, true]);
    expect(clients.reduce((n, c) => n + c.stats.spooled, 0)).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0); // the outages were noticed …
    expect(existsSync(path.join(spoolDir, 'producer-a.ndjson'))).toBe(false); // … and the spool drained

    const seen: Record<number, number[]> = { 0: [], 1: [] };
    let cursor: string | null = null;
    let total = 0;
    for (let page = 0; page < 10; page++) {
      const r = await post(`${url}/api/query`, { query: { event: 'spool_probe' }, limit: 10_000, cursor });
      for (const e of r.json.results as { id: number; metadata: { producer: number; n: number } }[]) {
        seen[e.metadata.producer]!.push(e.metadata.n);
        total += 1;
      }
      cursor = r.json.next_cursor;
      if (!cursor) break;
    }
    await svc.stop();
    const v = await run(['witness', 'verify', '--db', db, '--state-dir', path.join(dir, 'state'), '--json']);
    const inOrder = [0, 1].every((p) => seen[p]!.every((n, i) => n === i));
    const unique = new Set([0, 1].flatMap((p) => seen[p]!.map((n) => `${p}:${n}`))).size;
    recordFigure({
      fault: 'witness kill -9 twice while 2 producers stream (client spool)',
      trials: 2,
      expected: '10,000 stored once each, in order per producer',
      observed: `${unique} of 10000 stored, ${total - unique} duplicates, ${inOrder ? 'in order' : 'OUT OF ORDER'}`,
      figure: `${10_000 - unique} lost`,
      ok: unique === 10_000 && total === 10_000 && inOrder,
    });
    expect(total).toBe(10_000);
    for (const p of [0, 1]) expect(seen[p]).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, tree_size: 10_000 });
  }, 120_000);
});
