// canary, monitor, rollback and releases against real deployments: signaling (and nginx, when
// installed) from `ifmesh deploy`, real werift agents, real coturn and a real witness, on loopback.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { readProcess } from '../../src/state/processes.js';
import { statePaths } from '../../src/state/state-dir.js';
import { run, spawnCli, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
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
  };
  mkdirSync(path.join(dir, 'config/agents'), { recursive: true });
  for (const id of AGENTS) {
    await run(['keys', 'generate', '--agent', id, '--out', 'keys'], { cwd: dir });
    writeFileSync(
      path.join(dir, `config/agents/${id}.json`),
      JSON.stringify({ agent_id: id, key: `../../keys/${id}.key`, loopback: true }),
    );
  }
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
        '--monitor',
        '2s',
        '--interval',
        '400ms',
        '--failure-limit',
        '2',
        '--release',
        'v2',
        '--json',
      ],
      state,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.state.status).toBe('completed');
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
        '--failure-limit',
        '1',
        ...brokenTurn(),
        '--json',
      ],
      state,
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).not.toContain('wrong-password');
    const out = JSON.parse(r.stdout);
    expect(out.state.status).toBe('failed');
    expect(out.state.failed_gate.gate).toBe('connection_success');
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
        '--failure-limit',
        '0',
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
      ['canary', '--stage', 'staging', '--monitor', '10m', '--interval', '300ms', '--json'],
      state,
      120_000,
    );
    await waitFor(
      async () => {
        const s = await cli(['canary', 'status', '--json'], state);
        return s.code === 0 && JSON.parse(s.stdout).last_check !== null;
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
    expect(lines[0]).toMatchObject({ type: 'check', connection_success: 1, error_rate: 0, breach: null });
    expect(lines.at(-1)).toMatchObject({ type: 'result', breach: null, rollback: null });
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
    expect(lines[0].breach).toMatchObject({ trigger: 'error_rate' });
    expect(lines.at(-1).rollback.plan.to.id).toBe(v1);
    expect(current(state)).toBe(v1);
  }, 180_000);
});
