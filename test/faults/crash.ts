// The crash drills' shared steps (issue 23.1): run a procedure with IFMESH_PAUSE_AT=<procedure>:<step>
// (src/ops/procedure.ts: it stops itself right after its journal records the step), `kill -9` it
// there, and check what it left: every live process of the state recorded, nothing half-written,
// the journal saying where it stopped, and `ifmesh status` naming the interrupted run.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { interruptedRuns, PAUSE_ENV, type ProcedureRecord } from '../../src/ops/procedure.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { BIN, spawnCli, testTmp } from '../helpers/cli.js';
import { parentOf } from '../helpers/leak-guard.js';
import { trackPid } from '../helpers/pids.js';
import { isStopped } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

export interface Killed {
  pid: number;
  /** The journal the run left (src/ops/procedure.ts). */
  journal: ProcedureRecord;
  stderr: string;
}

/**
 * Runs `ifmesh <argv>` until it pauses at `procedure:step`, SIGKILLs it there and returns what it
 * left. Fails naming its stderr if it exits (or hangs) before reaching the step.
 */
export async function killAt(o: {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  state: string;
  procedure: string;
  step: string;
  timeoutMs?: number;
}): Promise<Killed> {
  const child = spawn(process.execPath, [BIN, ...o.argv], {
    cwd: o.cwd,
    env: {
      PATH: process.env.PATH ?? '',
      ...testTmp(),
      ...o.env,
      [PAUSE_ENV]: `${o.procedure}:${o.step}`,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  trackPid(child.pid);
  const pid = child.pid!;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let exited: number | null | undefined;
  const gone = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (code, sig) => {
      exited = code;
      resolve(sig);
    }),
  );
  try {
    await waitFor(
      () => {
        if (exited !== undefined)
          throw new Error(`ifmesh ${o.argv[0]} exited ${exited} before ${o.procedure}:${o.step}:\n${stderr}`);
        return isStopped(pid);
      },
      `${o.procedure} to pause at ${o.step}`,
      { timeoutMs: o.timeoutMs ?? 120_000, intervalMs: 20 },
    );
  } catch (err) {
    child.kill('SIGKILL');
    await gone;
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  const file = openStateDir(o.state).procedureFile(o.procedure);
  const journal = JSON.parse(readFileSync(file, 'utf8')) as ProcedureRecord;
  child.kill('SIGKILL');
  expect(await gone).toBe('SIGKILL');
  return { pid, journal, stderr };
}

/**
 * Live processes whose command line names the state directory and which no record accounts for. A
 * child of a recorded process is its parent's: an nginx master reloaded (SIGHUP) forks workers that
 * show the master's command line until they set their own title, which a loaded machine makes
 * long enough to be seen here.
 */
export function unrecordedProcesses(state: string): string[] {
  const recorded = new Set(listProcesses(openStateDir(state)).map((r) => r.pid));
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid || recorded.has(pid)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (!cmd.includes(state) || !isAlive(pid)) continue;
    const parent = parentOf(pid);
    if (!recorded.has(parent)) out.push(`${pid} (parent ${parent}): ${cmd.trim()}`);
  }
  return out;
}

/** The records a failed `unrecordedProcesses` check is read against: name, role, pid, owner, started. */
export function recordedSummary(state: string): string {
  return listProcesses(openStateDir(state))
    .map((r) => `${r.name} (${r.role}) pid ${r.pid} by ${r.owner} at ${r.started_at}`)
    .join('; ');
}

/**
 * Temp files under the state directory whose writer is gone: a write it never finished
 * (src/state/json-file.ts names them <file>.<pid>.tmp). A live writer's (an agent updating the
 * witness checkpoint at this moment) is not one; the spool's own files are the spool's business.
 */
export function halfWritten(state: string): string[] {
  return (readdirSync(state, { recursive: true }) as string[]).filter((f) => {
    if (!f.endsWith('.tmp') || f.startsWith(`logs${path.sep}`) || f.startsWith(`witness-spool${path.sep}`))
      return false;
    const writer = /\.(\d+)\.tmp$/.exec(f)?.[1];
    return writer === undefined || !isAlive(Number(writer));
  });
}

/**
 * What every kill must leave, checked from the outside: the journal at the step, its process gone,
 * nothing unrecorded or half-written, and `ifmesh status` naming the interrupted run (exit 1 while
 * something runs, 3 when nothing does) with the command that converges.
 */
export async function expectInterrupted(
  k: Killed,
  o: { state: string; cwd: string; env: Record<string, string>; procedure: string; step: string },
): Promise<{ hint: string }> {
  expect(k.journal).toMatchObject({ procedure: o.procedure, step: o.step, status: 'running', pid: k.pid });
  expect(isAlive(k.pid)).toBe(false);
  expect(unrecordedProcesses(o.state), recordedSummary(o.state)).toEqual([]);
  expect(halfWritten(o.state)).toEqual([]);
  const st = await spawnCli(['status', '--json', '--state-dir', o.state], {
    cwd: o.cwd,
    env: o.env,
    timeoutMs: 30_000,
  });
  const doc = JSON.parse(st.stdout);
  expect(doc.healthy).toBe(false);
  expect(st.code).toBe(doc.running ? 1 : 3);
  const run = (doc.interrupted as { procedure: string; step: string; hint: string }[]).find(
    (i) => i.procedure === o.procedure,
  );
  expect(run, JSON.stringify(doc.interrupted)).toMatchObject({ step: o.step, pid: k.pid });
  expect(run!.hint).toContain(`after step ${o.step}`);
  return { hint: run!.hint };
}

/** After the run that converges: `status` healthy (exit 0), nothing interrupted, the journal completed. */
export async function expectConverged(o: {
  state: string;
  cwd: string;
  env: Record<string, string>;
  procedure: string;
}): Promise<void> {
  const status = () =>
    spawnCli(['status', '--json', '--state-dir', o.state], { cwd: o.cwd, env: o.env, timeoutMs: 30_000 });
  // A reloaded nginx takes a moment to answer on its new workers: converged is healthy within a bound.
  let st = await status();
  await waitFor(
    async () => {
      if (st.code === 0) return true;
      st = await status();
      return st.code === 0;
    },
    'status to say healthy',
    { timeoutMs: 20_000, intervalMs: 500 },
  ).catch(() => {});
  const doc = JSON.parse(st.stdout);
  expect(doc.interrupted).toEqual([]);
  expect(doc.healthy, st.stdout).toBe(true);
  expect(st.code).toBe(0);
  const journal = JSON.parse(readFileSync(openStateDir(o.state).procedureFile(o.procedure), 'utf8'));
  expect(journal.status).toBe('completed');
  expect(unrecordedProcesses(o.state), recordedSummary(o.state)).toEqual([]);
  expect(halfWritten(o.state)).toEqual([]);
}

/**
 * Before a drill: a run a failed drill left interrupted is forgotten (its journal removed), so one
 * failure does not fail every drill after it on the same fleet. Returns what it forgot.
 */
export function forgetInterrupted(state: string): string[] {
  const s = openStateDir(state);
  return interruptedRuns(s).map((r) => {
    rmSync(s.procedureFile(r.procedure), { force: true });
    return r.procedure;
  });
}
