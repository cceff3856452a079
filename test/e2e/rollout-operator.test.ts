// The canary and rollback drills an operator runs by hand from a second terminal (freeze then
// abort, promote during a long analysis) and a rollback whose target fails its health check: each
// deploys its own fleet, so they live in the full tier (test/tiers.ts); rollout.test.ts keeps the
// main paths in the quick tier.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { spawnCli } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import {
  AGENTS,
  brokenTurn,
  cli,
  current,
  deployed,
  dir,
  env,
  pidOf,
  RTT_BUDGET,
  registered,
  release,
} from './rollout-fixture.js';

describe('ifmesh canary, driven from another process', () => {
  it('freezes a failed canary for inspection; abort from another process rolls it back', async () => {
    const state = await deployed('canary-freeze');
    const stable = current(state);
    const r = await cli(
      [
        'canary',
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

  it('freezes a canary whose candidate agent never registers, and refuses to promote it', async () => {
    const state = await deployed('canary-freeze-unregistered');
    const stable = current(state);
    // The candidate's configs name new key files: the signaling instance keeps agent-r1's id for the
    // key it registered with, so the candidate agent is refused (an operator's wrong --agents-dir).
    const cand = path.join(dir, 'cand-new-keys');
    mkdirSync(path.join(cand, 'config/agents'), { recursive: true });
    for (const id of AGENTS) {
      const k = await spawnCli(['keys', 'generate', '--agent', id, '--out', 'keys'], { cwd: cand });
      expect(k.code, k.stderr).toBe(0);
      writeFileSync(
        path.join(cand, `config/agents/${id}.json`),
        JSON.stringify({ agent_id: id, key: `../../keys/${id}.key`, loopback: true }),
      );
    }
    const r = await cli(
      [
        'canary',
        '--steps',
        '1,100%',
        ...RTT_BUDGET,
        '--freeze-on-failure',
        '--register-timeout',
        '3s',
        '--agents-dir',
        path.join(cand, 'config/agents'),
        '--json',
      ],
      state,
    );
    expect(r.code, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout).state;
    expect(out).toMatchObject({
      status: 'frozen',
      failed_gate: { gate: 'agents_registered' },
      message: expect.stringContaining('agent-r1 did not register on the candidate'),
    });
    // It says what can be done: abort, and not promote.
    expect(out.message).toContain('it cannot be promoted');
    const st = await cli(['canary', 'status', '--json'], state);
    expect(st.code).toBe(6);
    expect(JSON.parse(st.stdout).hint).toContain('it cannot be promoted');
    const pr = await cli(['canary', 'promote'], state);
    expect(pr.code).toBe(2);
    expect(pr.stderr).toContain('its candidate agents never registered');
    const ab = await cli(['canary', 'abort', '--json'], state);
    expect(ab.code, ab.stderr).toBe(0);
    expect(current(state)).toBe(stable);
    await waitFor(async () => (await registered(state)).length === 3, 'all three registered after the abort');
  }, 180_000);

  it('is promoted by hand from another process during a long analysis', async () => {
    const state = await deployed('canary-promote');
    const running = cli(
      ['canary', '--monitor', '10m', '--interval', '300ms', ...RTT_BUDGET, '--json'],
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
});

describe('ifmesh rollback to a target that fails', () => {
  it('restores what ran before and exits 1 when the target fails its health check', async () => {
    const state = await deployed('rb-restore', ['v1', 'v2']);
    const [v2, v1] = JSON.parse((await cli(['releases', '--json'], state)).stdout).releases.map(
      (x: { id: string }) => x.id,
    );
    // v1's agents now point at a signaling port nobody listens on: they start but never register
    const dead = await freePort();
    const rec = release(state, v1);
    for (const s of rec.agent_specs) s.signaling = [`ws://127.0.0.1:${dead}`];
    writeFileSync(openStateDir(state).releaseFile(v1), JSON.stringify(rec));
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
});
