// A canary of a new build (issue 19.7): on `ifmesh up`'s stack, the time from starting
// `ifmesh canary --release ./ifmesh-<v2>.tgz` to the first canary agent registered on v2's code
// (its process runs the release's entry script and signaling lists it registered after the start),
// against restarting one agent on the same build through the one restart path until it registers
// again. Twice: v2 not yet installed (the canary installs it: npm, offline from the cache) and
// already installed (a later canary of the same build).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { restartRecorded } from '../../src/ops/fleet/restart.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { median, ROOT, type Row } from './lib.js';

const BIN = path.join(ROOT, 'dist/bin/ifmesh.js');

function ifmesh(args: string[], cwd: string): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`ifmesh ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The built project packed as version `version` (dist/ as built, `prepare` finds no TypeScript). */
function pack(dir: string, version: string): string {
  const pkg = path.join(dir, `pkg-${version}`);
  for (const p of ['dist/bin', 'dist/commands', 'dist/src', 'fixtures', 'scripts/prepare.mjs'])
    cpSync(path.join(ROOT, p), path.join(pkg, p), { recursive: true });
  const json = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ ...json, version }));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  const r = spawnSync('npm', ['pack', '--pack-destination', dir, '--silent'], {
    cwd: pkg,
    env,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`npm pack: ${r.stderr}`);
  return path.join(dir, r.stdout.trim().split('\n').at(-1)!);
}

/** Whether `agent` is registered with a connected_at after `since` and (given `bin`) runs `bin`. */
async function registeredOn(api: string, agent: string, since: Date, bin: string | null, state: string) {
  const rec = listProcesses(openStateDir(state)).find((p) => p.name === `deploy-agent-${agent}`);
  if (!rec) return false;
  if (bin) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8');
    } catch {
      return false;
    }
    if (!cmd.split('\0').includes(bin)) return false;
  }
  try {
    const r = (await (await fetch(`${api}/agents`)).json()) as {
      agents: { agent_id: string; connected_at: string }[];
    };
    return r.agents.some((a) => a.agent_id === agent && new Date(a.connected_at) >= since);
  } catch {
    return false;
  }
}

async function until(cond: () => Promise<boolean>, t0: bigint, limitMs = 300_000): Promise<number> {
  for (;;) {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (await cond()) return ms;
    if (ms > limitMs) throw new Error(`not registered after ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const exited = (c: ChildProcess) =>
  c.exitCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()));

export async function benchRelease(rounds = 3): Promise<Row[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifmesh-bench-release-'));
  const state = path.join(dir, 'state');
  const st = openStateDir(state);
  try {
    const v2 = pack(dir, '0.2.0-bench');
    ifmesh(['up', '--agents', '3', '--instances', '1', '--state-dir', state, '--json'], dir);
    const signaling = listProcesses(st).find((p) => p.role === 'signaling')!;
    const api = `http://127.0.0.1:${signaling.port}`;
    const agents = listProcesses(st)
      .filter((p) => p.role === 'agents')
      .map((p) => p.name.replace(/^deploy-agent-/, ''))
      .sort();
    const first = agents[0]!;
    const ctx = { clock: systemClock, signal: undefined, dispatcher: undefined } as never;

    // Baseline: one agent restarted on its build, until signaling lists it registered again.
    const restart: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const since = new Date();
      const t0 = process.hrtime.bigint();
      const r = await restartRecorded(
        st,
        `deploy-agent-${first}`,
        { why: 'bench', evenIfHealthy: true },
        ctx,
      );
      if (!r.ok) throw new Error(r.detail);
      restart.push(await until(() => registeredOn(api, first, since, null, state), t0));
    }

    // The canary: cold (installs v2) once, then warm (v2 installed) `rounds` times. Each is aborted
    // once measured, which rolls its agent back.
    const canary = async (): Promise<number> => {
      const since = new Date();
      const t0 = process.hrtime.bigint();
      const c = spawn(
        process.execPath,
        [BIN, 'canary', '--release', v2, '--steps', '1,100%', '--monitor', '10m', '--state-dir', state],
        { cwd: dir, stdio: 'ignore' },
      );
      try {
        return await until(async () => {
          const rec = listProcesses(st).find((p) => p.name === `deploy-agent-${first}`);
          const entry = rec?.spec?.args[0];
          return (
            entry?.startsWith(`${st.releases}/`) === true &&
            (await registeredOn(api, first, since, entry!, state))
          );
        }, t0);
      } finally {
        spawnSync(process.execPath, [BIN, 'canary', 'abort', '--state-dir', state], {
          cwd: dir,
          timeout: 120_000,
        });
        await exited(c);
      }
    };
    const cold = await canary();
    const warm: number[] = [];
    for (let i = 0; i < rounds; i++) warm.push(await canary());

    const base = median(restart);
    const w = median(warm);
    return [
      {
        measure: `\`canary --release v2.tgz\` start → first canary agent registered on v2's code, v2 already installed (median of ${rounds})`,
        baseline: `one agent restarted on its build until registered: ${base.toFixed(0)} ms (median of ${rounds})`,
        ifmesh: `${w.toFixed(0)} ms`,
        ratio: `${(w / base).toFixed(2)}×`,
        target: '—',
      },
      {
        measure: '… v2 not yet installed: the canary installs it first (npm --offline from the cache)',
        baseline: `${base.toFixed(0)} ms`,
        ifmesh: `${cold.toFixed(0)} ms`,
        ratio: `${(cold / base).toFixed(2)}×`,
        target: '—',
      },
    ];
  } finally {
    spawnSync(process.execPath, [BIN, 'down', '--state-dir', state], { cwd: dir, timeout: 60_000 });
    rmSync(dir, { recursive: true, force: true });
  }
}
