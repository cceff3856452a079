import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { waitFor } from '../helpers/wait.js';
import {
  AGENTS,
  brokenTurn,
  cli,
  current,
  deployed,
  events,
  pidOf,
  RTT_BUDGET,
  registered,
  release,
  WINDOW,
} from './rollout-fixture.js';

describe('ifmesh canary', () => {
  it('passes analysis and promotes the candidate, every step under one trace id', async () => {
    const state = await deployed('canary-pass');
    const stable = current(state);
    const r = await cli(
      [
        'canary',
        '--steps',
        '1,100%',
        ...WINDOW,
        ...RTT_BUDGET,
        '--label',
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
    const p = openStateDir(state);
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
    expect(JSON.parse(st.stdout)).toMatchObject({ status: 'completed', exit_code: 0, fleet_since: null });
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
    // Rolled back later: the completed canary no longer says what runs; its status says what does.
    const rb = await cli(['rollback', '--reason', 'after the canary', '--json'], state);
    expect(rb.code, rb.stderr).toBe(0);
    const later = await cli(['canary', 'status'], state);
    expect(later.code).toBe(0);
    expect(later.stdout).toContain(
      `since then the fleet runs ${release(state, stable).ref} (${stable}): a rollback or deploy came after this canary`,
    );
  }, 180_000);

  it('rolls back a candidate that cannot connect, naming the gate, and never touches the stable agents', async () => {
    const state = await deployed('canary-fail');
    const stable = current(state);
    const stablePids = ['agent-r2', 'agent-r3'].map((id) => pidOf(state, id));
    const r = await cli(
      ['canary', '--monitor', '3s', '--interval', '300ms', ...RTT_BUDGET, ...brokenTurn(), '--json'],
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

  it('prints the plan with --dry-run and changes nothing', async () => {
    const state = await deployed('canary-dry');
    const before = AGENTS.map((id) => pidOf(state, id));
    const r = await cli(['canary', '--dry-run', '--set', 'TURN_PASSWORD=s3cret', '--json'], state);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.applied).toBe(false);
    expect(out.plan.candidate.changes).toEqual({ TURN_PASSWORD: '[redacted]' });
    expect(out.plan.candidate.unchanged).toBeUndefined();
    expect(r.stdout).not.toContain('s3cret');
    // A canary that changes nothing says so: it is a rehearsal, not a release.
    const same = await cli(['canary', '--dry-run'], state);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain('unchanged  the candidate runs what the stable release runs (a rehearsal)');
    expect(AGENTS.map((id) => pidOf(state, id))).toEqual(before);
    expect((await cli(['canary', 'status'], state)).code).toBe(2);
    expect(out.blocked_by).toBeNull();
    // Changes an agent would refuse to start on fail the plan, not the candidate's agents.
    const crash = await cli(
      ['canary', '--dry-run', '--set', 'TURN_SERVERS=turn:127.0.0.1:3478', '--set', 'TURN_USERNAME='],
      state,
    );
    expect(crash.code, crash.stderr).toBe(2);
    expect(crash.stderr).toContain(
      "error: the candidate's agents would not start with these --set values: TURN servers need a username and password",
    );
    // An incident holds deploys: the plan says the real canary would refuse, and what releases it.
    const lockFile = openStateDir(state).lock('deploy');
    writeFileSync(
      lockFile,
      JSON.stringify({
        pid: 1,
        purpose: 'incident INC-20261207-070000',
        since: new Date().toISOString(),
        token: 'x',
        persistent: true,
        release_hint: 'resolve the incident first: ifmesh incident resolve INC-20261207-070000',
      }),
    );
    const held = await cli(['canary', '--dry-run', '--set', 'TURN_PASSWORD=s3cret'], state);
    expect(held.code, held.stderr).toBe(0);
    expect(held.stdout).toContain(
      'blocked    the deploy lock is held by incident INC-20261207-070000: the canary would refuse now (resolve the incident first: ifmesh incident resolve INC-20261207-070000)',
    );
    rmSync(lockFile);
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
    const lockFile = openStateDir(state).lock('deploy');
    writeFileSync(
      lockFile,
      JSON.stringify({
        pid: process.pid,
        purpose: 'deploy other',
        since: new Date().toISOString(),
        token: 'x',
      }),
    );
    // A dry run says the rollback would refuse now, and who holds the lock.
    const blocked = JSON.parse((await cli(['rollback', '--dry-run', '--json'], state)).stdout);
    expect(blocked.blocked_by).toMatchObject({ holder: 'deploy other', pid: process.pid });
    expect(JSON.parse(dry.stdout).blocked_by).toBeNull();
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

  it('refuses with a clear message when there is no previous release', async () => {
    const state = await deployed('rb-none');
    const r = await cli(['rollback', '--json'], state);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no previous release to roll back to');
  }, 120_000);
});
