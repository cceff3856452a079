// The canary runner SIGKILLed at each boundary of its state machine (issue 19.5): `canary status`
// names the dead runner, and `canary resume` or `abort` converges on one release. In the full tier
// (npm run test:all): it runs the canary eight times on one fleet.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { PAUSE_POINTS, type PausePoint } from '../../src/ops/rollout/canary-run.js';
import { readProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { withFigure } from '../faults/figures.js';
import { spawnCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import {
  AGENTS,
  cli,
  current,
  deployed,
  dir,
  heldCanary,
  pidOf,
  RTT_BUDGET,
  registered,
  release,
  states,
  WINDOW,
} from './rollout-fixture.js';

/** Holds a canary at `point` (rollout-fixture's heldCanary), SIGKILLs its runner there, and returns the state it left. */
async function killRunnerAt(state: string, point: PausePoint, marker: string) {
  const runner = await heldCanary(state, point, [
    '--steps',
    '1,100%',
    ...WINDOW,
    ...RTT_BUDGET,
    '--set',
    `TURN_FALLBACK_TIMEOUT_MS=${marker}`,
  ]);
  const left = JSON.parse(readFileSync(openStateDir(state).canary, 'utf8'));
  expect(left.pid).toBe(runner.pid);
  process.kill(runner.pid, 'SIGKILL');
  expect((await runner.exit).signal).toBe('SIGKILL');
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
  const agentEnv = (id: string) => readProcess(openStateDir(state), `deploy-agent-${id}`)?.spec?.env;
  let n = 0;

  for (const point of PAUSE_POINTS)
    for (const action of ['resume', 'abort'] as const)
      it(
        `killed at ${point}: ${action} converges on one release`,
        () =>
          withFigure(
            {
              fault: `canary runner kill -9 at ${point}, then canary ${action}`,
              trials: 1,
              expected: 'status says runner_died (exit 8); converges on one release, every agent on it',
            },
            async () => {
              // A scenario that failed midway must not fail the next ones: whatever it left is aborted.
              const canaryFile = openStateDir(state).canary;
              if (
                existsSync(canaryFile) &&
                JSON.parse(readFileSync(canaryFile, 'utf8')).status === 'progressing'
              )
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
              // `ifmesh status` names it too, unhealthy until it is resumed or aborted.
              const fleet = await cli(['status', '--json'], state);
              expect(fleet.code).toBe(1);
              expect(JSON.parse(fleet.stdout).interrupted).toMatchObject([
                {
                  procedure: 'canary',
                  step: expectedStep[point],
                  hint: expect.stringContaining('canary resume'),
                },
              ]);
              // A new canary is refused until this one is finished.
              const refused = await cli(['canary', ...RTT_BUDGET], state);
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
              const specs = release(state, on).agent_specs as {
                agent_id: string;
                env: Record<string, string>;
              }[];
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
              return {
                observed: `runner_died seen; ${action} converged on one release, fleet healthy`,
                figure: 'converged',
              };
            },
          ),
        180_000,
      );
});
