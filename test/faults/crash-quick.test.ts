// Issue 23.1, the quick tier's crash drill (the full matrix is crash-deploy, crash-failover and
// crash-certs-keys, in the full tier): a first deploy `kill -9`ed once its agents were started but
// before anything was recorded as a release. Every process it started is recorded, `status` names
// the interrupted deploy and exits 1, and the same deploy run again takes over its lock and converges.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROCEDURE_STEPS } from '../../src/ops/procedure.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { AGENTS, current, dir, env, registered, release } from '../e2e/rollout-fixture.js';
import { spawnCli } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { expectConverged, expectInterrupted, killAt } from './crash.js';
import { outOf, withFigure } from './figures.js';

const state = path.join(dir, 'crash-quick');
afterAll(async () => {
  await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 60_000 });
}, 90_000);

describe('a first deploy, kill -9 after agents_started', () => {
  it(
    'leaves every process recorded, status names it, the same deploy again converges',
    () =>
      withFigure(
        {
          fault: 'first deploy kill -9 after agents_started, then deploy again (quick tier)',
          trials: 1,
          expected:
            'every process recorded, status names the interrupted deploy (exit 1); deploy again converges',
        },
        async () => {
          const step = 'agents_started';
          expect(PROCEDURE_STEPS.deploy).toContain(step);
          const argv = [
            'deploy',
            '--instances',
            '1',
            '--base-port',
            String(await freePortRange(2)),
            '--nginx-port',
            String(await freePort()),
            '--label',
            'v1',
            '--state-dir',
            state,
          ];
          const k = await killAt({ argv, cwd: dir, env, state, procedure: 'deploy', step });
          const { hint } = await expectInterrupted(k, { state, cwd: dir, env, procedure: 'deploy', step });
          // Started and recorded, not yet a release: a half-made fleet that says so.
          const names = listProcesses(openStateDir(state)).map((p) => p.name);
          for (const id of AGENTS) expect(names).toContain(`deploy-agent-${id}`);
          expect(() => current(state)).toThrow();

          // The command the hint names is the one that converges: run as written.
          const rerun = /run `ifmesh ([^`]+)` again/.exec(hint)?.[1]?.split(' ');
          expect(rerun, hint).toEqual(expect.arrayContaining(['--label', 'v1', '--state-dir', state]));
          const again = await spawnCli(rerun!, { cwd: dir, env, timeoutMs: 90_000 });
          expect(again.code, again.stderr).toBe(0);
          expect(release(state, current(state)).ref).toBe('v1');
          await waitFor(
            async () => (await registered(state)).length === AGENTS.length,
            'every agent registered',
            {
              timeoutMs: 30_000,
            },
          );
          await expectConverged({ state, cwd: dir, env, procedure: 'deploy' });
          return {
            observed: 'all recorded, interrupted deploy named; deploy again converged',
            figure: `converged ${outOf(1, 1)}`,
          };
        },
      ),
    150_000,
  );
});
