// Three witness processes writing to one PostgreSQL database keep one gap-free sequence and one
// verifiable Merkle log, and kill -9 of all three in a loop loses no acknowledged event and stores
// no event twice (clients retry an unacknowledged event under its idempotency key).
import path from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tempDir } from '../helpers/cli.js';
import { postgresForThisFile } from '../helpers/postgres.js';
import { type Service, startWitnessProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post } from '../helpers/witness.js';
import { outOf, recordFigure } from './figures.js';

const server = postgresForThisFile();
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  ({ dir, cleanup } = tempDir());
}, 120_000);
afterAll(async () => {
  cleanup?.();
});

// Instances sharing a database share the checkpoint key as well.
const startThree = (url: string, key: string) =>
  Promise.all([0, 1, 2].map(() => startWitnessProcess(url, ['--key', key, '--checkpoint-every', '50'])));

async function allEvents(url: string): Promise<{ id: number; idempotency_key?: string; w?: number }[]> {
  const out: { id: number; idempotency_key?: string }[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const r = await post(`${url}/api/query`, { limit: 10_000, cursor });
    expect(r.status).toBe(200);
    out.push(...r.json.results);
    cursor = r.json.next_cursor;
    if (!cursor) break;
  }
  return out.sort((a, b) => a.id - b.id);
}

async function verifyDb(
  url: string,
  state: string,
  key: string,
): Promise<{ ok: boolean; tree_size: number }> {
  const v = await run(['witness', 'verify', '--db', url, '--state-dir', state, '--pubkey', key, '--json']);
  const report = JSON.parse(v.stdout);
  expect(report, v.stderr).toMatchObject({ ok: true });
  expect(v.code).toBe(0);
  return report;
}

describe('IF.witness: three instances on one PostgreSQL database', () => {
  it('keep one gap-free sequence and one verifiable log under concurrent writes', async () => {
    const url = await server().createDatabase();
    const key = path.join(dir, 'concurrent.key');
    const ws = await startThree(url, key);
    try {
      // 3 writers per instance, 40 requests each, mixing single events and batches of 5.
      await Promise.all(
        ws.flatMap((w, i) =>
          [0, 1, 2].map(async (j) => {
            for (let n = 0; n < 40; n++) {
              const one = { event: 'concurrent_probe', metadata: { instance: i, writer: j, n } };
              const r = await post(`${w.url}/api/log`, n % 4 === 0 ? Array(5).fill(one) : one);
              expect(r.status).toBe(201);
            }
          }),
        ),
      );
      const events = await allEvents(ws[0]!.url);
      const expected = 9 * (30 + 10 * 5);
      expect(events.map((e) => e.id)).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
      // Every instance serves the same tree head.
      const heads = await Promise.all(
        ws.map(async (w) => {
          const r = await fetch(`${w.url}/health`, { signal: AbortSignal.timeout(5_000) });
          return ((await r.json()) as { tree_size?: number }).tree_size;
        }),
      );
      expect(new Set(heads).size).toBe(1);
      const online = await run([
        'witness',
        'verify',
        '--url',
        ws[1]!.url,
        '--state-dir',
        path.join(dir, 'concurrent-state'),
        '--json',
      ]);
      expect(JSON.parse(online.stdout)).toMatchObject({ ok: true, tree_size: expected });
    } finally {
      await Promise.all(ws.map((w) => w.stop()));
    }
    expect((await verifyDb(url, path.join(dir, 'concurrent-state'), key)).tree_size).toBe(9 * 80);
  }, 180_000);

  it('loses no acknowledged event and stores none twice through 20 kill -9 of all three writers', async () => {
    const url = await server().createDatabase();
    const key = path.join(dir, 'kill.key');
    const state = path.join(dir, 'kill-state');
    const acked = new Set<string>();
    let attempts = 0;
    let current: { ws: Service[]; agent: Agent } | undefined;
    let stop = false;
    // Writers wait here while no witness runs; opened each time new processes are up.
    let announce: () => void = () => {};
    let started = new Promise<void>((r) => {
      announce = r;
    });
    // Each writer retries its current event, under the same key, until it is acknowledged: a 201 lost
    // to a kill after the commit must come back as the original id, not a second event.
    const writer = async (w: number) => {
      let n = 0;
      while (!stop) {
        const gen = current;
        if (!gen) {
          await started;
          continue;
        }
        const key = `w${w}-${n}`;
        attempts += 1;
        try {
          const res = await fetch(`${gen.ws[w % 3]!.url}/api/log`, {
            method: 'POST',
            headers: { authorization: `Bearer ${API_KEY}` },
            body: JSON.stringify({ event: 'kill_probe', idempotency_key: key, metadata: { w, n } }),
            signal: AbortSignal.timeout(2_000),
            dispatcher: gen.agent,
          });
          await res.body?.cancel();
          if (res.status === 201) {
            acked.add(key);
            n += 1;
          }
        } catch {
          // refused or cut by the kill: this generation is over, the loop waits for the next one
          if (current === gen) await new Promise((r) => setImmediate(r));
        }
      }
    };
    const writers = [0, 1, 2, 3, 4, 5].map((w) => writer(w));
    try {
      for (let cycle = 0; cycle < 20; cycle++) {
        const gen = { ws: await startThree(url, key), agent: new Agent() };
        current = gen;
        announce();
        // Kill after a random number of acknowledgements (counted, not timed), with writes in flight.
        const target = acked.size + 5 + Math.floor(Math.random() * 10);
        await waitFor(() => acked.size >= target, `${target} acknowledged events`, { intervalMs: 1 });
        started = new Promise<void>((r) => {
          announce = r;
        });
        current = undefined;
        for (const w of gen.ws) w.kill('SIGKILL');
        await Promise.all(gen.ws.map((w) => w.exited));
        await gen.agent.destroy();
        await verifyDb(url, state, key);
      }
    } finally {
      stop = true;
      announce();
      await Promise.all(writers);
    }
    const [final] = await startThree(url, key).then(async (ws) => {
      await Promise.all(ws.slice(1).map((w) => w.stop()));
      return ws;
    });
    try {
      const events = await allEvents(final!.url);
      const keys = events.map((e) => e.idempotency_key);
      const stored = new Set(keys);
      const lost = [...acked].filter((k) => !stored.has(k));
      const gapFree = events.every((e, i) => e.id === i + 1);
      recordFigure({
        fault: 'kill -9 of 3 witnesses sharing PostgreSQL, under 6 writers',
        trials: 20,
        expected: 'acknowledged lost 0, duplicates 0, one gap-free sequence',
        observed: `${outOf(lost.length, acked.size)} acknowledged lost, ${keys.length - stored.size} duplicates, ${gapFree ? 'gap-free' : 'GAPS'}`,
        figure: `${lost.length} lost`,
        ok: lost.length === 0 && keys.length === stored.size && gapFree,
      });
      expect(events.map((e) => e.id)).toEqual(Array.from({ length: events.length }, (_, i) => i + 1));
      expect(new Set(keys).size).toBe(keys.length);
      expect(acked.size).toBeGreaterThanOrEqual(100);
      expect(lost).toEqual([]);
      expect(attempts).toBeGreaterThan(acked.size);
    } finally {
      await final!.stop();
    }
    await verifyDb(url, state, key);
  }, 300_000);
});
