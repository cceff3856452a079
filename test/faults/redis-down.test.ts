// Redis dies in the middle of a procedure (issue 23.2), under a fleet whose two signaling instances
// share one registry through it (SIGNALING_CLUSTER_URL: the operator's Redis, which ifmesh checks
// but does not run). While Redis is away an instance keeps its sockets but refuses new registrations
// (1013) and answers cluster-wide reads 503 `cluster_unavailable`, with /health "degraded".
//   - during a deploy: the agents it restarts cannot register. The deploy must end with a clear
//     reason naming the registry, and leave no fleet half-made; once Redis is back the same deploy
//     converges.
//   - during a canary: the canary agent cannot register, or the gates cannot read the registry. The
//     canary must not promote; it ends failed with its reason, and once Redis is back the fleet
//     heals and a canary run again promotes.
// Figure per case: the outcome, events lost (the spools drained into the witness, must be 0), and
// the time from Redis's return to a converged fleet.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openStateDir } from '../../src/state/state-dir.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { withFigure } from './figures.js';
import {
  faultFleet,
  lostAfterDrain,
  RTT_BUDGET,
  seconds,
  spooled,
  storedBy,
  WINDOW,
} from './fleet-fixture.js';

const fleet = faultFleet();
let redis: TestRedis | undefined;
afterEach(async () => {
  await redis?.cleanup();
  redis = undefined;
});

const components = async (state: string) =>
  JSON.parse((await fleet.cli(['status', '--json'], state)).stdout).components as {
    name: string;
    running: boolean;
    healthy: boolean;
  }[];
const currentId = (state: string) => readFileSync(openStateDir(state).currentRelease, 'utf8').trim();

/** Every process of the fleet running, and healthy (agents registered, instances "ok"). */
async function waitHealthy(state: string, timeoutMs = 90_000) {
  await waitFor(
    async () => {
      const r = await fleet.cli(['status', '--json'], state);
      return r.code === 0 && JSON.parse(r.stdout).healthy === true;
    },
    'the fleet healthy again',
    { timeoutMs, intervalMs: 500 },
  );
}

describe('Redis down mid-procedure', () => {
  it(
    'during a deploy: the deploy fails naming the registry and puts the running release back; Redis back, the fleet heals and the deploy converges',
    () =>
      withFigure(
        {
          fault: 'Redis stopped during a deploy (agents being moved)',
          trials: 1,
          expected:
            'deploy exit 1 naming Redis; previous release running again; events lost 0; Redis back: fleet heals, deploy re-run completes',
        },
        async () => {
          redis = await startRedis(undefined, undefined, 'cluster-pass');
          const clusterEnv = { SIGNALING_CLUSTER_URL: redis.url };
          const state = await fleet.deploy('redis-deploy', 2, { env: clusterEnv });
          const v1 = currentId(state);
          const args = [...(await fleet.deployArgs(state, 2, 'v2')), '--json'];
          const d = fleet.start(args, clusterEnv);
          // nginx reloaded: the instances are up on the new release, the agents are next.
          await waitFor(() => /^✓ nginx /m.test(d.stderr()), 'the deploy moving its agents', {
            timeoutMs: 90_000,
            intervalMs: 20,
          });
          await redis.cleanup();
          const r = await d.done;
          expect(r.code, r.stderr).toBe(1);
          const err = JSON.parse(r.stdout).error;
          expect(err.message).toMatch(/shared registry \(Redis, redis:\/\/.*\) does not answer/);
          expect(err.message).toMatch(/v1 \(.*\) put back, but .* not registered within 20 s/);
          expect(err.hint).toMatch(/bring that Redis back/);
          expect(r.stderr).not.toContain('cluster-pass');
          // The release that ran before is still current, and its processes run (waiting for Redis).
          expect(currentId(state)).toBe(v1);
          const comps = await components(state);
          for (const name of ['deploy-signaling-1', 'deploy-signaling-2', 'deploy-agent-agent-f1'])
            expect(comps.find((c) => c.name === name)?.running, name).toBe(true);
          const waiting = spooled(state);

          redis = await redis.resume();
          const back = Date.now();
          await waitHealthy(state);
          const healedMs = Date.now() - back;
          const { lost } = await lostAfterDrain(fleet, state, waiting);
          expect(lost).toEqual([]);
          const again = await fleet.raw(await fleet.deployArgs(state, 2, 'v2'), { env: clusterEnv });
          expect(again.code, again.stderr).toBe(0);
          expect(currentId(state)).not.toBe(v1);
          await waitHealthy(state);
          // The trail says how each of the three deploys ended: one failed, two completed.
          const count = (event: string) => storedBy(fleet.witness.db, 'event', event).length;
          expect(count('webrtc_deployment_started')).toBe(3);
          expect(count('webrtc_deployment_failed')).toBe(1);
          expect(count('webrtc_deployment_completed')).toBe(2);
          return {
            observed: `deploy failed naming Redis, v1 put back; healed ${seconds(healedMs)} after Redis returned; deploy trail whole (3 started, 1 failed, 2 completed), ${lost.length} of ${waiting.length} spooled events lost; re-run deployed`,
            figure: `0 lost, converged ${seconds(Date.now() - back)}`,
          };
        },
      ),
    300_000,
  );

  it(
    'during a canary analysis: the gates cannot read the registry, the analysis fails at the error limit, never promoted; Redis back, the fleet heals and a re-run promotes',
    () =>
      withFigure(
        {
          fault: 'Redis stopped during a canary analysis',
          trials: 1,
          expected:
            'canary exit 1, registry gates error, rolled back (never promoted); events lost 0; Redis back: fleet heals, canary re-run promotes',
        },
        async () => {
          redis = await startRedis(undefined, undefined, 'cluster-pass');
          const clusterEnv = { SIGNALING_CLUSTER_URL: redis.url };
          const state = await fleet.deploy('redis-canary', 2, { env: clusterEnv });
          const v1 = currentId(state);
          const canary = (pause?: string) =>
            fleet.start(
              [
                'canary',
                '--steps',
                '1,100%',
                ...WINDOW,
                ...RTT_BUDGET,
                '--set',
                'TURN_FALLBACK_TIMEOUT_MS=4323',
                '--json',
                '--state-dir',
                state,
              ],
              { ...clusterEnv, ...(pause ? { IFMESH_CANARY_PAUSE_AT: pause } : {}) },
            );
          const run = canary('agents_moved');
          await run.stopped('the canary runner paused once its agent moved');
          await redis.cleanup();
          run.child.kill('SIGCONT');
          const r = await run.done;
          expect(r.code, r.stderr).toBe(1);
          const s = JSON.parse(readFileSync(openStateDir(state).canary, 'utf8'));
          expect(s.status).toBe('failed');
          expect(s.failed_gate).toMatchObject({ gate: 'agents_registered', status: 'error' });
          expect(s.message).toMatch(/could not be measured 4 checks in a row/);
          expect(s.on_candidate).toEqual([]);
          expect(currentId(state)).toBe(v1);
          const waiting = spooled(state);

          redis = await redis.resume();
          const back = Date.now();
          await waitHealthy(state);
          const healedMs = Date.now() - back;
          const { lost } = await lostAfterDrain(fleet, state, waiting);
          expect(lost).toEqual([]);
          // The canary's own trail: started, its phase, every check it made, the rollback.
          expect(storedBy(fleet.witness.db, 'trace_id', s.trace_id).map((e) => e.event)).toEqual([
            'canary_started',
            'canary_phase_started',
            ...Array.from({ length: s.analysis.checks }, () => 'canary_analysis'),
            'deployment_rollback',
          ]);
          const again = await canary().done;
          expect(again.code, again.stderr).toBe(0);
          expect(currentId(state)).not.toBe(v1);
          await waitHealthy(state);
          return {
            observed: `failed on agents_registered (error ×4: /agents 503), rolled back; healed ${seconds(healedMs)} after Redis returned; canary trail whole, ${lost.length} of ${waiting.length} spooled events lost; re-run promoted`,
            figure: `0 lost, converged ${seconds(Date.now() - back)}`,
          };
        },
      ),
    300_000,
  );
});
