// `ifmesh down` of the default stack (witness, coturn ×2, redis when installed, signaling ×2, nginx,
// 3 agents) against the shortest raw path on an identical stack: SIGTERM to all at once, until all are gone. In that
// raw round, how long the agents process takes from SIGTERM to exit (it says bye to its peers first).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAlive } from '../../src/exec/pid.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { median, ROOT, type Row } from './lib.js';

const BIN = path.join(ROOT, 'dist/bin/ifmesh.js');

function ifmesh(args: string[], cwd: string): { ms: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    // The log the hint names goes with the error: the state directory is removed before anyone reads it.
    const log = /hint: see (\S+\.log)/.exec(r.stderr)?.[1];
    const tail = log && existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-30).join('\n') : '';
    throw new Error(
      `ifmesh ${args.join(' ')} exited ${r.status}: ${r.stderr}${tail ? `\n${log}:\n${tail}` : ''}`,
    );
  }
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, stdout: r.stdout };
}

/** Polls (1 ms) until every pid is gone; ms from the first signal. Bounded at 30 s. */
async function goneAfter(pids: number[], t0: bigint): Promise<number> {
  const limit = 30_000;
  for (;;) {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (pids.every((p) => !isAlive(p))) return ms;
    if (ms > limit) throw new Error(`pids ${pids.filter(isAlive).join(', ')} still alive after ${limit} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

export async function benchStack(rounds = 3): Promise<Row[]> {
  const down: number[] = [];
  const raw: number[] = [];
  const agentsExit: number[] = [];
  let count = 0;
  for (let i = 0; i < rounds; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ifmesh-bench-stack-'));
    const state = path.join(dir, 'state');
    try {
      ifmesh(['up', '--state-dir', state, '--json'], dir);
      down.push(JSON.parse(ifmesh(['down', '--state-dir', state, '--json'], dir).stdout).elapsed_ms);

      ifmesh(['up', '--state-dir', state, '--json'], dir);
      const procs = listProcesses(openStateDir(state));
      count = procs.length;
      const agents = procs.find((p) => p.role === 'agents')!.pid;
      const t0 = process.hrtime.bigint();
      for (const p of procs) process.kill(p.pid, 'SIGTERM');
      const [all, agentsGone] = await Promise.all([
        goneAfter(
          procs.map((p) => p.pid),
          t0,
        ),
        goneAfter([agents], t0),
      ]);
      raw.push(all);
      agentsExit.push(agentsGone);
    } finally {
      spawnSync(process.execPath, [BIN, 'down', '--state-dir', state], { cwd: dir, timeout: 60_000 });
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const d = median(down);
  const r = median(raw);
  return [
    {
      measure: `\`ifmesh down\` of the default stack (${count} processes), median of ${rounds}`,
      baseline: `SIGTERM to all ${count} at once, until gone: ${r.toFixed(0)} ms`,
      ifmesh: `${d.toFixed(0)} ms`,
      ratio: `${(d / r).toFixed(2)}×`,
      target: '≤ 3,000 ms',
      met: d <= 3_000,
    },
    {
      measure: `agents process (3 agents): SIGTERM to exit, bye sent, median of ${rounds}`,
      baseline: '—',
      ifmesh: `${median(agentsExit).toFixed(0)} ms`,
      ratio: '—',
      target: '≤ 2,000 ms',
      met: median(agentsExit) <= 2_000,
    },
  ];
}
