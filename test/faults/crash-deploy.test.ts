// Issue 23.1: `kill -9` of deploy and of rollback at each of their step boundaries, on one
// deploy-made fleet (one signaling instance, its Redis, nginx, three werift agents). After each kill
// the state is consistent (every live process of the state recorded, nothing half-written, the
// deploy lock left by a dead holder), `status` names the interrupted run and exits non-zero, and
// running the procedure again converges: deploy records the new release with every agent on it, and
// rollback finishes the same rollback (never one release further). In the full tier (~4 min).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { PROCEDURE_STEPS } from '../../src/ops/procedure.js';
import { lockHolder } from '../../src/state/lock.js';
import { openStateDir } from '../../src/state/state-dir.js';
import {
  AGENTS,
  cli,
  current,
  deployed,
  dir,
  env,
  pidOf,
  registered,
  release,
  states,
} from '../e2e/rollout-fixture.js';
import { spawnCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { expectConverged, expectInterrupted, forgetInterrupted, killAt } from './crash.js';
import { outOf, withFigure } from './figures.js';

let state = '';
let ports: string[] = [];
beforeAll(async () => {
  state = await deployed('crash-deploy');
  states.splice(states.indexOf(state), 1);
  const procs = release(state, current(state)).processes as { role: string; port: number }[];
  ports = [
    '--base-port',
    String(procs.find((p) => p.role === 'signaling')!.port),
    '--nginx-port',
    String(procs.find((p) => p.role === 'nginx')!.port),
  ];
}, 120_000);
// A drill that failed must not fail the next ones: what it left interrupted is forgotten.
beforeEach(() => {
  forgetInterrupted(state);
});
afterAll(async () => {
  await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 60_000 });
}, 90_000);

const deployArgv = (label: string) => [
  'deploy',
  '--instances',
  '1',
  ...ports,
  '--label',
  label,
  '--state-dir',
  state,
];

/** Every agent of the current release runs on its spec and is registered; `status` is healthy. */
async function expectFleetOn(releaseId: string, procedure: string): Promise<void> {
  expect(current(state)).toBe(releaseId);
  for (const id of AGENTS) expect(isAlive(pidOf(state, id)!)).toBe(true);
  await waitFor(async () => (await registered(state)).length === AGENTS.length, 'every agent registered', {
    timeoutMs: 30_000,
  });
  await expectConverged({ state, cwd: dir, env, procedure });
}

describe('deploy, kill -9 at each step boundary', () => {
  for (const step of PROCEDURE_STEPS.deploy)
    it(
      `killed after ${step}: status names it, deploy again converges`,
      () =>
        withFigure(
          {
            fault: `deploy kill -9 after ${step}, then deploy again`,
            trials: 1,
            expected:
              'status names the interrupted deploy (exit 1); nothing unrecorded or half-written; deploy again converges, fleet healthy',
          },
          async () => {
            const label = `v-${step}`;
            const before = current(state);
            const k = await killAt({
              argv: deployArgv(label),
              cwd: dir,
              env,
              state,
              procedure: 'deploy',
              step,
            });
            await expectInterrupted(k, { state, cwd: dir, env, procedure: 'deploy', step });
            // The deploy lock names the dead run: the next deploy takes it over.
            expect((await lockHolder(openStateDir(state), 'deploy'))?.pid).toBe(k.pid);
            // Only the last boundary has recorded the release.
            expect(current(state) === before).toBe(step !== 'release_recorded');

            const again = await cli(deployArgv(label), state);
            expect(again.code, again.stderr).toBe(0);
            expect(release(state, current(state)).ref).toBe(label);
            await expectFleetOn(current(state), 'deploy');
            return {
              observed: 'interrupted deploy named; deploy again converged, fleet healthy',
              figure: `converged ${outOf(1, 1)}`,
            };
          },
        ),
      180_000,
    );
});

describe('rollback, kill -9 at each step boundary', () => {
  for (const step of PROCEDURE_STEPS.rollback)
    it(
      `killed after ${step}: status names it, rollback again finishes the same rollback`,
      () =>
        withFigure(
          {
            fault: `rollback kill -9 after ${step}, then rollback again`,
            trials: 1,
            expected:
              'status names the interrupted rollback (exit 1); rollback again lands on the same target, fleet healthy',
          },
          async () => {
            const dry = await cli(['rollback', '--dry-run', '--json'], state);
            expect(dry.code, dry.stderr).toBe(0);
            const { from, to } = JSON.parse(dry.stdout).plan;
            const k = await killAt({
              argv: ['rollback', '--state-dir', state],
              cwd: dir,
              env,
              state,
              procedure: 'rollback',
              step,
            });
            const { hint } = await expectInterrupted(k, {
              state,
              cwd: dir,
              env,
              procedure: 'rollback',
              step,
            });
            expect(hint).toContain('ifmesh rollback');
            expect(current(state)).toBe(step === 'current_set' ? to.id : from.id);

            const again = await cli(['rollback', '--json'], state);
            expect(again.code, again.stderr).toBe(0);
            const plan = JSON.parse(again.stdout).plan;
            // The same rollback, finished: not one release further back.
            expect([plan.from.id, plan.to.id]).toEqual([from.id, to.id]);
            expect(plan.continues).toMatchObject({ step });
            expect([release(state, from.id).outcome, release(state, to.id).outcome]).toEqual([
              'rolled_back',
              'restored',
            ]);
            await expectFleetOn(to.id, 'rollback');
            return {
              observed: 'interrupted rollback named; rollback again finished it on the same target',
              figure: `converged ${outOf(1, 1)}`,
            };
          },
        ),
      180_000,
    );
});
