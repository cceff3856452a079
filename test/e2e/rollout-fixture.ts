// The rollout tests' shared fixture: one coturn and one witness per test file, agent configs, and a
// fleet of its own per test (`deployed`), stopped by pid after each test. Imported by rollout.test.ts,
// rollout-monitor.test.ts and rollout-crash.test.ts; its hooks register on the importing file.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { PausePoint } from '../../src/ops/rollout/canary-run.js';
import { readProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { BIN, spawnCli, tempDir, testTmp } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { brokenTurnArgs, writeAgentConfigs } from '../helpers/deploy.js';
import { trackPid } from '../helpers/pids.js';
import { freePort, isStopped } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { getJson } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, startWitness } from '../helpers/witness.js';

export const { dir, cleanup } = tempDir();
export const AGENTS = ['agent-r1', 'agent-r2', 'agent-r3'];
export const env: Record<string, string> = {};
let witnessUrlValue = '';
/** The witness every rollout test's fleet logs to. */
export const witnessUrl = () => witnessUrlValue;
let turnPort = 0;
let stopAll: () => Promise<void> = async () => {};
export const states: string[] = [];

beforeAll(async () => {
  const turn = await startCoturn();
  const w = await startWitness();
  witnessUrlValue = w.url;
  turnPort = Number(/:(\d+)$/.exec(turn.stunUrl)![1]);
  stopAll = async () => {
    await w.stop();
    await turn.stop();
  };
  Object.assign(env, {
    STUN_SERVERS: turn.stunUrl,
    IF_WITNESS_ENDPOINT: w.url,
    IF_WITNESS_API_KEY: API_KEY,
    IFMESH_OPERATOR: 'tester',
    // deploy binds SIGNALING_HOST (default 0.0.0.0): tests stay on loopback.
    SIGNALING_HOST: '127.0.0.1',
  });
  await writeAgentConfigs(dir, AGENTS);
}, 60_000);
afterEach(async () => {
  // every process a test's deployment started is stopped by pid (`down` reads the process list)
  for (const s of states.splice(0))
    await spawnCli(['down', '--state-dir', s], { cwd: dir, timeoutMs: 60_000 });
});
afterAll(async () => {
  await stopAll();
  cleanup();
});

/** A deployment of its own: one signaling instance (so the three agents form one mesh). */
export async function deployed(name: string, refs: string[] = ['v1']): Promise<string> {
  const state = path.join(dir, name);
  states.push(state);
  // deploy puts Redis (when installed) on the port after the instance's
  const base = await freePortRange(2);
  const nginx = await freePort();
  for (const ref of refs) {
    const r = await spawnCli(
      [
        'deploy',
        '--instances',
        '1',
        '--base-port',
        String(base),
        '--nginx-port',
        String(nginx),
        '--label',
        ref,
        '--state-dir',
        state,
      ],
      { cwd: dir, env, timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
  }
  return state;
}

// The RTT gate depends on this machine's load, not on what these tests prove (its threshold is tested
// in the unit tests); every other gate keeps the runbook's numbers.
export const RTT_BUDGET = ['--threshold', 'rtt_p2p_p95_ms=10000'];
// The window of a canary meant to pass: long enough for its pairs to connect on a loaded machine
// (seconds; until they do, connection_success is inconclusive and a shorter window would never pass).
// A failing analysis ends at its first failed check, so only passing runs pay for it.
export const WINDOW = ['--monitor', '10s', '--interval', '500ms'];
export const cli = (args: string[], state: string, timeoutMs = 90_000) =>
  spawnCli([...args, '--state-dir', state], { cwd: dir, env, timeoutMs });
export const pidOf = (state: string, id: string) =>
  readProcess(openStateDir(state), `deploy-agent-${id}`)?.pid;
export const current = (state: string) => readFileSync(openStateDir(state).currentRelease, 'utf8').trim();
export const release = (state: string, id: string) =>
  JSON.parse(readFileSync(openStateDir(state).releaseFile(id), 'utf8'));
export const registered = async (state: string) => {
  const port = release(state, current(state)).processes[0].port;
  return ((await getJson(`http://127.0.0.1:${port}/agents`)).json?.agents ?? [])
    .map((a: { agent_id: string }) => a.agent_id)
    .sort();
};
export async function events(query: Record<string, unknown>) {
  const r = await post(`${witnessUrl()}/api/query`, { query, limit: 1000 });
  return r.json.results as Record<string, any>[];
}
/** A candidate that registers but cannot connect (test/helpers/deploy.ts). */
export const brokenTurn = () => brokenTurnArgs(turnPort);

/**
 * Starts `ifmesh canary <args>` on `state` with IFMESH_CANARY_PAUSE_AT=`point` (its runner stops
 * itself right after its state records that point) and returns once it has; `exit` settles when
 * the runner ends (SIGKILL it there, or SIGCONT to let it go on).
 */
export async function heldCanary(state: string, point: PausePoint, args: string[]) {
  const child = spawn(process.execPath, [BIN, 'canary', ...args, '--state-dir', state], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...testTmp(), ...env, IFMESH_CANARY_PAUSE_AT: point },
    stdio: 'ignore',
  });
  trackPid(child.pid);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  await waitFor(() => isStopped(child.pid!), `the canary runner paused at ${point}`, {
    timeoutMs: 90_000,
    intervalMs: 20,
  });
  return { pid: child.pid!, exit };
}
