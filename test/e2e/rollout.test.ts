// canary, monitor, rollback and releases against real deployments: signaling (and nginx, when
// installed) from `ifmesh deploy` or `ifmesh up`, real werift agents, real coturn and a real
// witness, on loopback; a canary runner SIGKILLed at each boundary of its state machine.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { PAUSE_POINTS, type PausePoint } from '../../src/ops/rollout/canary-run.js';
import { readProcess } from '../../src/state/processes.js';
import { statePaths } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { BIN, spawnCli, tempDir, testTmp } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { writeAgentConfigs } from '../helpers/deploy.js';
import { trackPid } from '../helpers/pids.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { getJson } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, startWitness } from '../helpers/witness.js';

const { dir, cleanup } = tempDir();
const AGENTS = ['agent-r1', 'agent-r2', 'agent-r3'];
let env: Record<string, string> = {};
let witnessUrl = '';
let turnPort = 0;
let stopAll: () => Promise<void> = async () => {};
const states: string[] = [];

beforeAll(async () => {
  const turn = await startCoturn();
  const w = await startWitness();
  witnessUrl = w.url;
  turnPort = Number(/:(\d+)$/.exec(turn.stunUrl)![1]);
  stopAll = async () => {
    await w.stop();
    await turn.stop();
  };
  env = {
    STUN_SERVERS: turn.stunUrl,
    IF_WITNESS_ENDPOINT: w.url,
    IF_WITNESS_API_KEY: API_KEY,
    IFMESH_OPERATOR: 'tester',
    // deploy binds SIGNALING_HOST (default 0.0.0.0): tests stay on loopback.
    SIGNALING_HOST: '127.0.0.1',
  };
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
async function deployed(name: string, refs: string[] = ['v1']): Promise<string> {
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
        '--release',
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
const RTT_BUDGET = ['--threshold', 'rtt_p2p_p95_ms=10000'];
// The window of a canary meant to pass: long enough for its pairs to connect on a loaded machine
// (seconds; until they do, connection_success is inconclusive and a shorter window would never pass).
// A failing analysis ends at its first failed check, so only passing runs pay for it.
const WINDOW = ['--monitor', '10s', '--interval', '500ms'];
const cli = (args: string[], state: string, timeoutMs = 90_000) =>
  spawnCli([...args, '--state-dir', state], { cwd: dir, env, timeoutMs });
const pidOf = (state: string, id: string) => readProcess(state, `deploy-agent-${id}`)?.pid;
const current = (state: string) => readFileSync(statePaths(state).currentRelease, 'utf8').trim();
const release = (state: string, id: string) =>
  JSON.parse(readFileSync(statePaths(state).releaseFile(id), 'utf8'));
const registered = async (state: string) => {
  const port = release(state, current(state)).processes[0].port;
  return ((await getJson(`http://127.0.0.1:${port}/agents`)).json?.agents ?? [])
    .map((a: { agent_id: string }) => a.agent_id)
    .sort();
};
async function events(query: Record<string, unknown>) {
  const r = await post(`${witnessUrl}/api/query`, { query, limit: 1000 });
  return r.json.results as Record<string, any>[];
}
/** A candidate that registers but cannot connect: relay only, through coturn, with a wrong password. */
const brokenTurn = () => [
  '--set',
  'ICE_TRANSPORT_POLICY=relay',
  '--set',
  `TURN_SERVERS=turn:127.0.0.1:${turnPort}`,
  '--set',
  'TURN_USERNAME=ifmesh',
  '--set',
  'TURN_PASSWORD=wrong-password',
];

describe('ifmesh canary', () => {
  it('passes analysis and promotes the candidate, every step under one trace id', async () => {
    const state = await deployed('canary-pass');
    const stable = current(state);
    const r = await cli(
      [
        'canary',
        '--stage',
        'staging',
        '--steps',
        '1,100%',
        ...WINDOW,
        ...RTT_BUDGET,
        '--release',
        'v2',
        '--set',
        'TURN_PASSWORD=canary-secret-e2e',
        '--set',
        'TURN_FALLBACK_TIMEOUT_MS=4000',
        '--json',
      ],
      state,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.state.status).toBe('completed');
    // Every required gate measured ok at least once in the window; none was blind at the end.
    expect(out.state.analysis.measured).toEqual(expect.arrayContaining(out.plan.analysis.required));
    expect(out.plan.analysis).toMatchObject({ failure_limit: 0, consecutive_error_limit: 4 });
    // Release and canary files are 0600 and hold the --set secret only as a name in the secrets file,
    // from which the agents got it back.
    const p = statePaths(state);
    const files = [p.canary, ...readdirSync(p.releases).map((f) => path.join(p.releases, f))];
    for (const f of files) {
      expect(statSync(f).mode & 0o777, f).toBe(0o600);
      expect(readFileSync(f, 'utf8'), f).not.toContain('canary-secret-e2e');
    }
    expect(release(state, current(state)).agent_specs[0]).toMatchObject({
      env: { TURN_FALLBACK_TIMEOUT_MS: '4000' },
      secret_env: { TURN_PASSWORD: `release:${out.plan.canary_id}:TURN_PASSWORD` },
    });
    expect(readFileSync(p.secrets, 'utf8')).toContain('canary-secret-e2e');
    const environ = readFileSync(`/proc/${pidOf(state, 'agent-r3')}/environ`, 'utf8').split('\0');
    expect(environ).toContain('TURN_PASSWORD=canary-secret-e2e');
    expect(out.plan.phases.map((p: { new_agents: string[] }) => p.new_agents)).toEqual([
      ['agent-r1'],
      ['agent-r2', 'agent-r3'],
    ]);
    expect(current(state)).toBe(out.plan.canary_id);
    expect(release(state, current(state))).toMatchObject({ ref: 'v2', outcome: 'promoted', who: 'tester' });
    expect(await registered(state)).toEqual(AGENTS);
    const st = await cli(['canary', 'status', '--json'], state);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ status: 'completed', exit_code: 0 });
    const rel = JSON.parse((await cli(['releases', '--json'], state)).stdout);
    expect(rel.releases.map((x: { id: string; outcome: string }) => [x.id, x.outcome])).toEqual([
      [out.plan.canary_id, 'promoted'],
      [stable, 'deployed'],
    ]);
    await waitFor(
      async () => (await events({ trace_id: out.state.trace_id, event: 'deployment_promoted' })).length === 1,
      'promotion in the witness',
    );
    const names = (await events({ trace_id: out.state.trace_id })).map((e) => e.event);
    expect(names).toContain('canary_started');
    expect(names).toContain('canary_analysis');
  }, 180_000);

  it('rolls back a candidate that cannot connect, naming the gate, and never touches the stable agents', async () => {
    const state = await deployed('canary-fail');
    const stable = current(state);
    const stablePids = ['agent-r2', 'agent-r3'].map((id) => pidOf(state, id));
    const r = await cli(
      [
        'canary',
        '--stage',
        'staging',
        '--monitor',
        '3s',
        '--interval',
        '300ms',
        ...RTT_BUDGET,
        ...brokenTurn(),
        '--json',
      ],
      state,
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).not.toContain('wrong-password');
    const out = JSON.parse(r.stdout);
    expect(out.state.status).toBe('failed');
    // Its pairs never connect: failed, or (still "connecting" when the window ends) never measured.
    expect(out.state.failed_gate).toMatchObject({
      gate: 'connection_success',
      status: expect.stringMatching(/^(failed|inconclusive)$/),
    });
    expect(current(state)).toBe(stable);
    expect(['agent-r2', 'agent-r3'].map((id) => pidOf(state, id))).toEqual(stablePids);
    for (const pid of stablePids) expect(isAlive(pid!)).toBe(true);
    await waitFor(
      async () => (await registered(state)).length === 3,
      'all three registered after the rollback',
    );
    const st = await cli(['canary', 'status', '--watch', '--timeout', '5s', '--json'], state);
    expect(st.code).toBe(1);
    await waitFor(
      async () => (await events({ trace_id: out.state.trace_id, event: 'deployment_rollback' })).length === 1,
      'rollback in the witness',
    );
    const [rb] = await events({ trace_id: out.state.trace_id, event: 'deployment_rollback' });
    expect(rb!.metadata).toMatchObject({ gate: 'connection_success', to: stable, agents: ['agent-r1'] });
  }, 180_000);

  it('freezes a failed canary for inspection; abort from another process rolls it back', async () => {
    const state = await deployed('canary-freeze');
    const stable = current(state);
    const r = await cli(
      [
        'canary',
        '--stage',
        'production',
        '--monitor',
        '3s',
        '--interval',
        '300ms',
        ...RTT_BUDGET,
        '--freeze-on-failure',
        ...brokenTurn(),
        '--json',
      ],
      state,
    );
    expect(r.code, r.stderr).toBe(1);
    const canaryPid = pidOf(state, 'agent-r1');
    expect(JSON.parse(r.stdout).state).toMatchObject({ status: 'frozen', on_candidate: ['agent-r1'] });
    const frozen = await cli(['canary', 'status', '--json'], state);
    expect(frozen.code).toBe(6);
    expect(isAlive(canaryPid!)).toBe(true); // kept for inspection
    const ab = await cli(['canary', 'abort', '--json'], state);
    expect(ab.code, ab.stderr).toBe(0);
    expect(isAlive(canaryPid!)).toBe(false);
    const st = await cli(['canary', 'status', '--json'], state);
    expect(st.code).toBe(5);
    expect(JSON.parse(st.stdout)).toMatchObject({ status: 'aborted', on_candidate: [] });
    expect(current(state)).toBe(stable);
    await waitFor(async () => (await registered(state)).length === 3, 'all three registered after the abort');
  }, 180_000);

  it('is promoted by hand from another process during a long analysis', async () => {
    const state = await deployed('canary-promote');
    const running = cli(
      ['canary', '--stage', 'staging', '--monitor', '10m', '--interval', '300ms', ...RTT_BUDGET, '--json'],
      state,
      120_000,
    );
    await waitFor(
      async () => {
        const s = await cli(['canary', 'status', '--json'], state);
        return s.code === 0 && (JSON.parse(s.stdout).analysis?.checks ?? 0) > 0;
      },
      'the canary analysing',
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const watch = await cli(['canary', 'status', '--watch', '--timeout', '500ms', '--json'], state);
    expect(watch.code).toBe(7);
    const pr = await cli(['canary', 'promote', '--json'], state);
    expect(pr.code, pr.stderr).toBe(0);
    expect(JSON.parse(pr.stdout).handed_to).toBeGreaterThan(0);
    const r = await running;
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).state).toMatchObject({
      status: 'completed',
      message: expect.stringContaining('promoted by hand'),
    });
    const done = await cli(['canary', 'status', '--watch', '--timeout', '5s', '--json'], state);
    expect(done.code).toBe(0);
    expect(await registered(state)).toEqual(AGENTS);
  }, 180_000);

  it('prints the plan with --dry-run and changes nothing', async () => {
    const state = await deployed('canary-dry');
    const before = AGENTS.map((id) => pidOf(state, id));
    const r = await cli(
      ['canary', '--stage', 'staging', '--dry-run', '--set', 'TURN_PASSWORD=s3cret', '--json'],
      state,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.applied).toBe(false);
    expect(out.plan.candidate.changes).toEqual({ TURN_PASSWORD: '[redacted]' });
    expect(r.stdout).not.toContain('s3cret');
    expect(AGENTS.map((id) => pidOf(state, id))).toEqual(before);
    expect((await cli(['canary', 'status'], state)).code).toBe(2);
  }, 120_000);
});

describe('ifmesh rollback', () => {
  it('goes back to the previous release, health-checked, and logs deployment_rollback', async () => {
    const state = await deployed('rb-ok', ['v1', 'v2']);
    const [v2, v1] = JSON.parse((await cli(['releases', '--json'], state)).stdout).releases.map(
      (x: { id: string }) => x.id,
    );
    const dry = await cli(['rollback', '--dry-run', '--json'], state);
    expect(JSON.parse(dry.stdout).plan.to.id).toBe(v1);
    expect(current(state)).toBe(v2);
    // the deploy lock is taken: a rollback while another deploy holds it fails fast, naming the holder
    const lockFile = statePaths(state).lock('deploy');
    writeFileSync(
      lockFile,
      JSON.stringify({
        pid: process.pid,
        purpose: 'deploy other',
        since: new Date().toISOString(),
        token: 'x',
      }),
    );
    const locked = await cli(['rollback'], state);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain(`the deploy lock is held by pid ${process.pid} (deploy other`);
    expect(current(state)).toBe(v2);
    rmSync(lockFile);
    const r = await cli(['rollback', '--reason', 'bad v2', '--json'], state);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(current(state)).toBe(v1);
    expect(await registered(state)).toEqual(AGENTS);
    const rel = JSON.parse((await cli(['releases', '--json'], state)).stdout).releases;
    expect(
      rel.map((x: { ref: string; outcome: string; current: boolean }) => [x.ref, x.outcome, x.current]),
    ).toEqual([
      ['v2', 'rolled_back', false],
      ['v1', 'restored', true],
    ]);
    await waitFor(
      async () => (await events({ trace_id: out.trace_id, event: 'deployment_rollback' })).length === 1,
      'the rollback event',
    );
    const [ev] = await events({ trace_id: out.trace_id, event: 'deployment_rollback' });
    expect(ev!.metadata).toMatchObject({ reason: 'bad v2', operator: 'tester', from: v2, to: v1 });
  }, 180_000);

  it('restores what ran before and exits 1 when the target fails its health check', async () => {
    const state = await deployed('rb-restore', ['v1', 'v2']);
    const [v2, v1] = JSON.parse((await cli(['releases', '--json'], state)).stdout).releases.map(
      (x: { id: string }) => x.id,
    );
    // v1's agents now point at a signaling port nobody listens on: they start but never register
    const dead = await freePort();
    const rec = release(state, v1);
    for (const s of rec.agent_specs) s.signaling = [`ws://127.0.0.1:${dead}`];
    writeFileSync(statePaths(state).releaseFile(v1), JSON.stringify(rec));
    const r = await spawnCli(['rollback', '--health-timeout', '5s', '--state-dir', state], {
      cwd: dir,
      env,
      timeoutMs: 90_000,
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`${v2} restored and running`);
    expect(current(state)).toBe(v2);
    expect(await registered(state)).toEqual(AGENTS);
  }, 180_000);

  it('refuses with a clear message when there is no previous release', async () => {
    const state = await deployed('rb-none');
    const r = await cli(['rollback', '--json'], state);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no previous release to roll back to');
  }, 120_000);
});

describe('ifmesh monitor', () => {
  it('watches a healthy deployment for its whole duration and rolls nothing back', async () => {
    const id = `healthy-${Date.now()}`;
    const ok = AGENTS.flatMap((a) =>
      AGENTS.filter((b) => b > a).map((b) => ({
        event: 'connection_state_changed',
        deployment_id: id,
        agent_id: a,
        peer_id: b,
        metadata: { state: 'connected' },
      })),
    );
    expect((await post(`${witnessUrl}/api/events`, ok)).status).toBe(201);
    const state = path.join(dir, 'mon-ok');
    const r = await spawnCli(
      [
        'monitor',
        '--deployment-id',
        id,
        '--duration',
        '1s',
        '--interval',
        '300ms',
        '--json',
        '--state-dir',
        state,
      ],
      { cwd: dir, env },
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const gates = (l: { gates: { gate: string; status: string; value: unknown }[] }) =>
      Object.fromEntries(l.gates.map((g) => [g.gate, [g.status, g.value]]));
    expect(gates(lines[0])).toMatchObject({
      connection_success: ['ok', 1],
      error_rate: ['ok', 0],
      memory_growth_mb: ['inconclusive', null],
    });
    expect(lines.at(-1)).toMatchObject({ type: 'result', result: 'passed', gate: null, rollback: null });
  });

  it('rolls back to the previous release when the error rate passes 5 %', async () => {
    const state = await deployed('mon-breach', ['v1', 'v2']);
    const [v2, v1] = JSON.parse((await cli(['releases', '--json'], state)).stdout).releases.map(
      (x: { id: string }) => x.id,
    );
    const dep = release(state, v2).deployment_id;
    const bad = Array.from({ length: 200 }, () => ({
      event: 'webrtc_error',
      deployment_id: dep,
    }));
    expect((await post(`${witnessUrl}/api/events`, bad)).status).toBe(201);
    const r = await cli(
      ['monitor', '--deployment-id', dep, '--duration', '5s', '--interval', '300ms', '--json'],
      state,
    );
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0].status).toBe('failed');
    expect(lines.at(-1)).toMatchObject({ result: 'failed', gate: { gate: 'error_rate', status: 'failed' } });
    expect(lines.at(-1).rollback.plan.to.id).toBe(v1);
    expect(current(state)).toBe(v1);
  }, 180_000);
});

describe('canary analysis with a blind source', () => {
  it('never promotes with the witness unreachable: its gates error, then fail the analysis', async () => {
    const state = await deployed('canary-blind');
    const stable = current(state);
    const dead = `http://127.0.0.1:${await freePort()}`;
    const blind = (extra: string[]) =>
      cli(
        [
          'canary',
          '--stage',
          'staging',
          '--steps',
          '1,100%',
          '--monitor',
          '2s',
          '--interval',
          '300ms',
          '--witness',
          dead,
          ...RTT_BUDGET,
          ...extra,
          '--json',
        ],
        state,
      );
    // The consecutive error limit (default 4) reached: failed, naming the unreachable source.
    const r = await blind([]);
    expect(r.code, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout).state;
    expect(out).toMatchObject({
      status: 'failed',
      failed_gate: { gate: 'witness_error_rate', status: 'error', value: null },
      message: expect.stringContaining('could not be measured 4 checks in a row'),
    });
    expect(out.analysis.checks).toBe(4);
    expect(out.analysis.last_check.gates).toEqual(
      expect.arrayContaining([expect.objectContaining({ gate: 'signature_failures', status: 'error' })]),
    );
    expect(current(state)).toBe(stable);
    // Under a higher limit the window runs out instead: inconclusive, never passed, still rolled back.
    const r2 = await blind(['--consecutive-error-limit', '100']);
    expect(r2.code, r2.stderr).toBe(1);
    expect(JSON.parse(r2.stdout).state).toMatchObject({
      status: 'failed',
      failed_gate: { gate: 'witness_error_rate', status: 'error' },
      message: expect.stringContaining('witness_error_rate, signature_failures never measured in the window'),
    });
    expect(current(state)).toBe(stable);
    await waitFor(async () => (await registered(state)).length === 3, 'all three registered again');
  }, 180_000);
});

describe('ifmesh canary after ifmesh up', () => {
  it('canaries the local stack: up records its agents as the first release', async () => {
    requireBinary('turnserver', 'coturn');
    const state = path.join(dir, 'up-stack');
    states.push(state);
    const up = await spawnCli(['up', '--max-rtt-p95', '10s', '--state-dir', state, '--json'], {
      cwd: dir,
      env: { IFMESH_OPERATOR: 'tester' },
      timeoutMs: 120_000,
    });
    expect(up.code, up.stderr).toBe(0);
    const first = current(state);
    const r = await spawnCli(
      [
        'canary',
        '--stage',
        'staging',
        '--steps',
        '1,100%',
        ...WINDOW,
        ...RTT_BUDGET,
        '--set',
        'TURN_FALLBACK_TIMEOUT_MS=4500',
        '--state-dir',
        state,
        '--json',
      ],
      { cwd: dir, env: { IFMESH_OPERATOR: 'tester' }, timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.plan.stable.id).toBe(first);
    expect(out.state.status).toBe('completed');
    expect(release(state, current(state))).toMatchObject({ id: out.plan.canary_id, outcome: 'promoted' });
    for (const id of ['agent-1', 'agent-2', 'agent-3'])
      expect(readProcess(state, `deploy-agent-${id}`)?.spec?.env).toEqual({
        TURN_FALLBACK_TIMEOUT_MS: '4500',
      });
    const st = await spawnCli(['status', '--state-dir', state, '--json'], { cwd: dir });
    expect(st.code, st.stdout).toBe(0);
  }, 240_000);
});

/**
 * Starts `ifmesh canary` with IFMESH_CANARY_PAUSE_AT=`point` (the runner stops itself right after
 * its state records that point), SIGKILLs it there, and returns the state it left.
 */
async function killRunnerAt(state: string, point: PausePoint, marker: string) {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'canary',
      '--stage',
      'staging',
      '--steps',
      '1,100%',
      ...WINDOW,
      ...RTT_BUDGET,
      '--set',
      `TURN_FALLBACK_TIMEOUT_MS=${marker}`,
      '--state-dir',
      state,
    ],
    {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...testTmp(), ...env, IFMESH_CANARY_PAUSE_AT: point },
      stdio: 'ignore',
    },
  );
  trackPid(child.pid);
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_, sig) => resolve(sig)));
  const stopped = () => {
    try {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'T';
    } catch {
      return false;
    }
  };
  await waitFor(stopped, `the canary runner paused at ${point}`, { timeoutMs: 90_000, intervalMs: 20 });
  const left = JSON.parse(readFileSync(statePaths(state).canary, 'utf8'));
  expect(left.pid).toBe(child.pid);
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return left;
}

describe('ifmesh canary, its runner SIGKILLed at each boundary', () => {
  let state = '';
  // One fleet for every scenario (each starts from where the last converged), stopped after them all.
  beforeAll(async () => {
    state = await deployed('canary-crash');
    states.splice(states.indexOf(state), 1);
  }, 120_000);
  afterAll(async () => {
    await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 60_000 });
  }, 90_000);
  const agentEnv = (id: string) => readProcess(state, `deploy-agent-${id}`)?.spec?.env;
  let n = 0;

  for (const point of PAUSE_POINTS)
    for (const action of ['resume', 'abort'] as const)
      it(`killed at ${point}: ${action} converges on one release`, async () => {
        // A scenario that failed midway must not fail the next ones: whatever it left is aborted.
        const canaryFile = statePaths(state).canary;
        if (existsSync(canaryFile) && JSON.parse(readFileSync(canaryFile, 'utf8')).status === 'progressing')
          await cli(['canary', 'abort'], state);
        const stable = current(state);
        const marker = String(4100 + n++);
        const left = await killRunnerAt(state, point, marker);
        expect(left.status).toBe('progressing');
        const expectedStep = {
          phase_started: 'move',
          agents_moved: 'analyse',
          measured: 'analyse',
          promoting: 'promote',
        };
        expect(left.step.kind).toBe(expectedStep[point]);
        if (point === 'measured') expect(left.analysis.checks).toBe(1);
        if (point === 'promoting') expect(left.on_candidate).toHaveLength(2);

        // Detected: not "progressing" with exit 0, but the runner's death, with what to do.
        const died = await cli(['canary', 'status', '--json'], state);
        expect(died.code).toBe(8);
        expect(JSON.parse(died.stdout)).toMatchObject({
          status: 'runner_died',
          hint: expect.stringContaining('ifmesh canary resume'),
        });
        // A new canary is refused until this one is finished.
        const refused = await cli(['canary', '--stage', 'staging', ...RTT_BUDGET], state);
        expect(refused.code).toBe(2);
        expect(refused.stderr).toContain('unfinished (its runner died');

        const r = await cli(['canary', action, '--json'], state);
        expect(r.code, r.stderr).toBe(0);
        const st = await cli(['canary', 'status', '--json'], state);
        const on = action === 'resume' ? left.plan.canary_id : stable;
        expect(JSON.parse(st.stdout)).toMatchObject({
          status: action === 'resume' ? 'completed' : 'aborted',
          on_candidate: action === 'resume' ? AGENTS : [],
          in_flight: null,
          pid: 0,
        });
        expect(st.code).toBe(action === 'resume' ? 0 : 5);
        // The outcome recorded, and every agent running on the one current release's spec.
        expect(current(state)).toBe(on);
        expect(release(state, left.plan.canary_id).outcome).toBe(
          action === 'resume' ? 'promoted' : 'aborted',
        );
        const specs = release(state, on).agent_specs as { agent_id: string; env: Record<string, string> }[];
        for (const id of AGENTS) {
          expect(isAlive(pidOf(state, id)!)).toBe(true);
          expect(agentEnv(id)).toEqual(specs.find((s) => s.agent_id === id)!.env);
        }
        expect(AGENTS.map(agentEnv).map((e) => e?.TURN_FALLBACK_TIMEOUT_MS === marker)).toEqual(
          AGENTS.map(() => action === 'resume'),
        );
        await waitFor(async () => (await registered(state)).length === 3, 'all three registered');
        const health = await cli(['status', '--json'], state);
        expect(health.code, health.stdout).toBe(0);
        expect(JSON.parse(health.stdout).healthy).toBe(true);
      }, 180_000);
});

describe('ifmesh monitor with the witness unreachable', () => {
  it('reports error measurements instead of throwing, and fails at the consecutive error limit', async () => {
    const state = path.join(dir, 'mon-blind');
    const dead = `http://127.0.0.1:${await freePort()}`;
    const mon = (extra: string[]) =>
      spawnCli(
        [
          'monitor',
          '--deployment-id',
          'blind',
          '--interval',
          '100ms',
          '--witness',
          dead,
          '--json',
          '--state-dir',
          state,
          ...extra,
        ],
        { cwd: dir, env },
      );
    const r = await mon(['--duration', '5s', '--consecutive-error-limit', '3', '--no-rollback']);
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({ type: 'check', status: 'error', events: null });
    expect(lines[0].gates.every((g: { status: string }) => g.status === 'error')).toBe(true);
    expect(lines.at(-1)).toMatchObject({
      type: 'result',
      result: 'failed',
      gate: { gate: 'error_rate', status: 'error' },
      reason: expect.stringContaining('could not be measured 3 checks in a row'),
      rollback: null,
    });
    // Fewer checks than the limit: the run ends inconclusive, never "no rollback triggered".
    const short = await mon(['--duration', '250ms']);
    expect(short.code, short.stderr).toBe(1);
    expect(JSON.parse(short.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      result: 'inconclusive',
      rollback: null,
    });
  });
});
