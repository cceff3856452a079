// An acknowledged event survives kill -9: 50 kills of a real witness process while 4 writers post.
import path from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { type Service, startWitnessProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post } from '../helpers/witness.js';
import { outOf, recordFigure } from './figures.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

describe('witness durability', () => {
  it('keeps every acknowledged event through 50 kill -9 under 4 concurrent writers', async () => {
    const db = path.join(dir, 'witness.db');
    const acked = new Set<string>();
    let attempts = 0;
    let current: { svc: Service; agent: Agent } | undefined;
    let stop = false;
    // Writers wait here while no witness runs; opened each time a new process is up.
    let announce: () => void = () => {};
    let started = new Promise<void>((r) => {
      announce = r;
    });
    const writer = async (w: number) => {
      let n = 0;
      while (!stop) {
        const gen = current;
        if (!gen) {
          await started;
          continue;
        }
        const key = `w${w}-${n++}`;
        attempts += 1;
        try {
          const res = await fetch(`${gen.svc.url}/api/log`, {
            method: 'POST',
            headers: { authorization: `Bearer ${API_KEY}` },
            body: JSON.stringify({ event: 'durability_probe', idempotency_key: key, metadata: { w } }),
            signal: AbortSignal.timeout(2_000),
            dispatcher: gen.agent,
          });
          if (res.status === 201) acked.add(key);
          await res.body?.cancel();
        } catch {
          // refused or cut by the kill: this generation is over, the loop waits for the next one
          if (current === gen) await new Promise((r) => setImmediate(r));
        }
      }
    };
    // One connection pool per process generation, destroyed with it, so no writer waits on a dead socket.
    const writers = [0, 1, 2, 3].map((w) => writer(w));
    for (let kill = 0; kill < 50; kill++) {
      const gen = { svc: await startWitnessProcess(db), agent: new Agent() };
      current = gen;
      announce();
      // Kill after a random number of acknowledgements (counted, not timed), with writes in flight.
      const target = acked.size + 5 + Math.floor(Math.random() * 10);
      await waitFor(() => acked.size >= target, `${target} acknowledged events`, { intervalMs: 1 });
      started = new Promise<void>((r) => {
        announce = r;
      });
      current = undefined;
      gen.svc.kill('SIGKILL');
      await gen.svc.exited;
      await gen.agent.destroy();
    }
    stop = true;
    announce();
    await Promise.all(writers);
    const final = await startWitnessProcess(db);
    const verify = async () => {
      const { run } = await import('../helpers/cli.js');
      const v = await run([
        'witness',
        'verify',
        '--db',
        db,
        '--state-dir',
        path.join(dir, 'state'),
        '--json',
      ]);
      return JSON.parse(v.stdout) as { ok: boolean };
    };
    try {
      const stored = new Set<string>();
      let rows = 0;
      let cursor: string | null = null;
      for (let page = 0; page < 100; page++) {
        const r = await post(`${final.url}/api/query`, {
          query: { event: 'durability_probe' },
          limit: 10_000,
          cursor,
        });
        for (const e of r.json.results as { idempotency_key: string }[]) {
          stored.add(e.idempotency_key);
          rows += 1;
        }
        cursor = r.json.next_cursor;
        if (!cursor) break;
      }
      const lost = [...acked].filter((k) => !stored.has(k));
      const duplicates = rows - stored.size;
      await final.stop();
      const verified = await verify();
      recordFigure({
        fault: 'witness kill -9 under 4 writers',
        trials: 50,
        expected: 'acknowledged lost 0, duplicates 0, witness verify passes',
        observed: `${outOf(lost.length, acked.size)} acknowledged lost, ${duplicates} duplicates, verify ${verified.ok ? 'passes' : 'FAILS'}`,
        figure: `${lost.length} lost`,
        ok: lost.length === 0 && duplicates === 0 && verified.ok,
      });
      expect(duplicates).toBe(0);
      expect(verified).toMatchObject({ ok: true });
      expect(acked.size).toBeGreaterThanOrEqual(250);
      expect(lost).toEqual([]);
      expect(attempts).toBeGreaterThan(acked.size);
    } finally {
      await final.stop();
    }
  }, 180_000);
});
