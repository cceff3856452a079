// The rollout tests after a canary: `ifmesh monitor` (healthy, over the error rate, with the witness
// unreachable), a canary whose analysis cannot read the witness, and a canary of `ifmesh up`'s
// stack. Apart from rollout.test.ts so that the suite's two workers share the rollout tests.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, stateDir } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { post } from '../helpers/witness.js';
import {
  AGENTS,
  cli,
  current,
  deployed,
  dir,
  env,
  RTT_BUDGET,
  registered,
  release,
  states,
  WINDOW,
  witnessUrl,
} from './rollout-fixture.js';

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
    expect((await post(`${witnessUrl()}/api/events`, ok)).status).toBe(201);
    const state = stateDir(dir, 'mon-ok');
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
    expect((await post(`${witnessUrl()}/api/events`, bad)).status).toBe(201);
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
      expect(readProcess(openStateDir(state), `deploy-agent-${id}`)?.spec?.env).toEqual({
        TURN_FALLBACK_TIMEOUT_MS: '4500',
      });
    const st = await spawnCli(['status', '--state-dir', state, '--json'], { cwd: dir });
    expect(st.code, st.stdout).toBe(0);
  }, 240_000);
});

describe('ifmesh monitor with the witness unreachable', () => {
  it('reports error measurements instead of throwing, and fails at the consecutive error limit', async () => {
    const state = stateDir(dir, 'mon-blind');
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
