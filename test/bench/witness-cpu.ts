// CPU per event of a witness under the batched-ingest row of witness.ts (500 events a request, 4
// clients), read from /proc (Linux): on a shared machine throughput swings with the neighbours,
// CPU time per event much less. Prints one JSON line per round: the main thread, the whole process
// and each other thread busy enough to matter, in µs per event.
//
//   npm run bench -- witness --no-write   (builds dist/, including this script), then
//   node dist/test/bench/witness-cpu.js [ROOT ...]
//
// Each ROOT is a built checkout (default this one), measured one after the other: for an A/B
// comparison, name both and repeat the command, alternating, so both see the same load. ROUNDS (3)
// and REQUESTS (400) tune the length.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { ROOT } from './lib.js';
import { postLog, startWitness } from './witness.js';

const TICK_US = 1e6 / 100; // USER_HZ

function cpuUs(file: string): number {
  const s = readFileSync(file, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

function threads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) out.set(t, cpuUs(`/proc/${pid}/task/${t}/stat`));
  return out;
}

/** One 500-event batch as witness.ts's batched row posts it. */
const BATCH = JSON.stringify(
  Array.from({ length: 500 }, () => ({
    event: 'bench',
    agent_id: 'agent-1',
    metadata: { n: 1, state: 'connected' },
  })),
);

async function measure(root: string, rounds: number, requests: number): Promise<unknown[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifmesh-witness-cpu-'));
  try {
    const w = await startWitness(path.join(dir, 'w.db'), [], root);
    try {
      const pool = new Pool(w.url, { connections: 4 });
      const run = async (n: number) => {
        let left = n;
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (left-- > 0) await postLog(pool, BATCH);
          }),
        );
      };
      await run(100);
      const out: unknown[] = [];
      for (let k = 0; k < rounds; k++) {
        const before = threads(w.pid);
        const t0 = performance.now();
        await run(requests);
        const wall = performance.now() - t0;
        const after = threads(w.pid);
        const events = requests * 500;
        const per = (t: string) => (after.get(t)! - (before.get(t) ?? 0)) / events;
        const others = [...after.keys()].filter((t) => t !== String(w.pid) && per(t) >= 0.1);
        out.push({
          root,
          main: +per(String(w.pid)).toFixed(2),
          process: +[...after.keys()].reduce((sum, t) => sum + per(t), 0).toFixed(2),
          threads: others.map((t) => +per(t).toFixed(2)),
          eventsPerSecond: Math.round((events * 1000) / wall),
        });
      }
      await pool.close();
      return out;
    } finally {
      await w.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const roots = process.argv.slice(2);
const rounds = Number(process.env.ROUNDS ?? 3);
const requests = Number(process.env.REQUESTS ?? 400);
for (const root of roots.length > 0 ? roots : [ROOT])
  for (const r of await measure(path.resolve(root), rounds, requests)) console.log(JSON.stringify(r));
