// PostgreSQL restarts under the witness while writers post: a real witness process on a real
// PostgreSQL, 4 writers that retry each event under its idempotency key until it is acknowledged.
// The database is stopped (fast shutdown: every session cut) and started again, twice. The witness
// must stay up, answer 503 (not crash, not acknowledge what it did not store) while the database is
// away, and take writes again once it is back. Figure: acknowledged events lost (must be 0),
// duplicates (0), time from the database's return to the next acknowledgement.
import path from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tempDir } from '../helpers/cli.js';
import { postgresForThisFile } from '../helpers/postgres.js';
import { startWitnessProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post } from '../helpers/witness.js';
import { outOf, recordFigure } from './figures.js';

const server = postgresForThisFile();
let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir());
});
afterAll(() => cleanup?.());

describe('IF.witness when PostgreSQL restarts under ingest', () => {
  it('stays up, acknowledges only what it stored, and takes writes again: nothing lost, nothing twice', async () => {
    const url = await server().createDatabase();
    const key = path.join(dir, 'witness.key');
    const witness = await startWitnessProcess(url, ['--key', key, '--checkpoint-every', '50']);
    const agent = new Agent();
    const acked = new Set<string>();
    const statuses: Record<number, number> = {};
    let stop = false;
    const writer = async (w: number) => {
      let n = 0;
      while (!stop) {
        const key = `w${w}-${n}`;
        try {
          const res = await fetch(`${witness.url}/api/log`, {
            method: 'POST',
            headers: { authorization: `Bearer ${API_KEY}` },
            body: JSON.stringify({ event: 'pg_restart_probe', idempotency_key: key, metadata: { w, n } }),
            signal: AbortSignal.timeout(5_000),
            dispatcher: agent,
          });
          await res.body?.cancel();
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          if (res.status === 201) {
            acked.add(key);
            n += 1;
          } else await new Promise((r) => setTimeout(r, 20));
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const writers = [0, 1, 2, 3].map((w) => writer(w));
    const recoveries: number[] = [];
    let crashed = false;
    try {
      for (let restart = 0; restart < 2; restart++) {
        const target = acked.size + 50;
        await waitFor(() => acked.size >= target, `${target} acknowledged events`, { timeoutMs: 60_000 });
        await server().restart();
        const back = Date.now();
        const before = acked.size;
        await waitFor(
          () => acked.size > before || witness.child.exitCode !== null || witness.child.signalCode !== null,
          'an acknowledgement after the restart',
          {
            timeoutMs: 60_000,
          },
        );
        if (witness.child.exitCode !== null || witness.child.signalCode !== null) {
          crashed = true;
          break;
        }
        recoveries.push(Date.now() - back);
      }
      await waitFor(() => acked.size >= 150 || crashed, '150 acknowledged events', { timeoutMs: 60_000 });
    } finally {
      stop = true;
      await Promise.all(writers);
      await agent.destroy();
    }
    const rows: string[] = [];
    if (!crashed) {
      let cursor: string | null = null;
      for (let page = 0; page < 100; page++) {
        const r = await post(`${witness.url}/api/query`, {
          query: { event: 'pg_restart_probe' },
          limit: 10_000,
          cursor,
        });
        rows.push(...(r.json.results as { idempotency_key: string }[]).map((e) => e.idempotency_key));
        cursor = r.json.next_cursor;
        if (!cursor) break;
      }
    }
    await witness.stop();
    const stored = new Set(rows);
    const lost = [...acked].filter((k) => !stored.has(k)).length;
    const duplicates = rows.length - stored.size;
    const v = await run(['witness', 'verify', '--db', url, '--state-dir', dir, '--pubkey', key, '--json']);
    const verified = (JSON.parse(v.stdout || '{}') as { ok?: boolean }).ok === true;
    const slowest = recoveries.length ? Math.max(...recoveries) : Number.NaN;
    recordFigure({
      fault: 'PostgreSQL restarted twice during witness ingest',
      trials: 2,
      expected: 'witness stays up; acknowledged lost 0, duplicates 0; verify passes',
      observed: crashed
        ? `the witness process exited: ${witness.stderr().trim().split('\n').at(-1)?.slice(0, 160)}`
        : `${outOf(lost, acked.size)} acknowledged lost, ${duplicates} duplicates, ${statuses[503] ?? 0} × 503 meanwhile, verify ${verified ? 'passes' : 'FAILS'}`,
      figure: Number.isFinite(slowest) ? `${(slowest / 1000).toFixed(1)} s to the next ack` : 'no recovery',
      ok: !crashed && lost === 0 && duplicates === 0 && verified,
    });
    expect(crashed, witness.stderr().slice(-2_000)).toBe(false);
    expect(lost).toBe(0);
    expect(duplicates).toBe(0);
    expect(verified).toBe(true);
    // Every answer while the database was away was a retryable refusal, never a 5xx other than 503.
    expect(Object.keys(statuses).filter((s) => Number(s) >= 500 && s !== '503')).toEqual([]);
  }, 240_000);
});
