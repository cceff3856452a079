// The witness dies during a canary (issue 23.2). The canary's analysis reads the witness (the
// canary agents' error rate, signature failures); a witness that does not answer must never read as
// a healthy one: the gate measures `error`, and the analysis fails at the consecutive error limit or
// ends `inconclusive` when the window runs out first — never promoted. The canary agents go back to
// the stable release, `canary status` says why, and nothing the canary, the agents or the instances
// logged meanwhile is lost: once the witness is back (`witness spool --flush`), it holds every event
// they spooled, and the canary's own trail is whole. A canary run again then promotes.
// Figure per case: the outcome, events lost (must be 0), and the time from the witness's return to
// a converged fleet (the trail drained and the re-run canary promoted).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openStateDir } from '../../src/state/state-dir.js';
import { withFigure } from './figures.js';
import {
  faultFleet,
  lostAfterDrain,
  RTT_BUDGET,
  type SpooledEvent,
  seconds,
  spooled,
  storedBy,
  WINDOW,
} from './fleet-fixture.js';

const fleet = faultFleet();
const canaryFile = (state: string) => openStateDir(state).canary;
const canaryState = (state: string) => JSON.parse(readFileSync(canaryFile(state), 'utf8'));

/** Everything after the fault: the trail drained and counted, then a canary run again must promote. */
async function converge(state: string, waiting: SpooledEvent[], traceId: string, checks: number) {
  const back = Date.now();
  const { lost } = await lostAfterDrain(fleet, state, waiting);
  // The canary's own trail, whole: started, its phase, every check it made, the rollback.
  const trail = storedBy(fleet.witness.db, 'trace_id', traceId).map((e) => e.event);
  expect(trail).toEqual([
    'canary_started',
    'canary_phase_started',
    ...Array.from({ length: checks }, () => 'canary_analysis'),
    'deployment_rollback',
  ]);
  const again = await fleet.cli(['canary', '--steps', '1,100%', ...WINDOW, ...RTT_BUDGET, '--json'], state);
  expect(again.code, again.stderr).toBe(0);
  expect(JSON.parse(again.stdout).state.status).toBe('completed');
  const health = await fleet.cli(['status', '--json'], state);
  expect(health.code, health.stdout).toBe(0);
  return { lost, convergeMs: Date.now() - back };
}

describe('the witness down during a canary', () => {
  it(
    'killed once the canary agent moved: the witness gate errors, the analysis fails at the error limit, the agent goes back; nothing lost',
    () =>
      withFigure(
        {
          fault: 'witness kill -9 during a canary analysis',
          trials: 1,
          expected:
            'witness gate error, analysis failed at the error limit, rolled back (never promoted); events lost 0; re-run promotes',
        },
        async () => {
          const state = await fleet.deploy('canary-witness-killed');
          const run = fleet.start(
            [
              'canary',
              '--steps',
              '1,100%',
              ...WINDOW,
              ...RTT_BUDGET,
              '--set',
              'TURN_FALLBACK_TIMEOUT_MS=4321',
              '--json',
              '--state-dir',
              state,
            ],
            { IFMESH_CANARY_PAUSE_AT: 'agents_moved' },
          );
          await run.stopped('the canary runner paused once its agent moved');
          await fleet.witness.kill();
          run.child.kill('SIGCONT');
          const r = await run.done;
          const waiting = spooled(state);
          // The canary ended, failed (exit 1), on the witness gate's errors, and promoted nothing.
          expect(r.code, r.stderr).toBe(1);
          const s = canaryState(state);
          expect(s.status).toBe('failed');
          expect(s.failed_gate).toMatchObject({ gate: 'witness_error_rate', status: 'error' });
          expect(s.message).toMatch(/witness_error_rate could not be measured 4 checks in a row/);
          expect(s.on_candidate).toEqual([]);
          const status = await fleet.cli(['canary', 'status', '--json'], state);
          expect(status.code).toBe(1);
          // The canary's events waited in its spool, and the agents' too.
          expect(waiting.filter((e) => e.producer.startsWith('canary-')).map((e) => e.event)).toContain(
            'deployment_rollback',
          );
          await fleet.witness.start();
          const { lost, convergeMs } = await converge(state, waiting, s.trace_id, s.analysis.checks);
          expect(lost).toEqual([]);
          return {
            observed: `failed on witness_error_rate (error ×4), rolled back; ${lost.length} of ${waiting.length} spooled events lost; re-run promoted`,
            figure: `0 lost, converged ${seconds(convergeMs)}`,
          };
        },
      ),
    240_000,
  );

  it(
    'down for the whole window, the error limit out of reach: the window ends inconclusive, never promoted; nothing lost',
    () =>
      withFigure(
        {
          fault: 'witness down for a whole canary window',
          trials: 1,
          expected:
            'window inconclusive (witness gates never measured), rolled back (never promoted); events lost 0; re-run promotes',
        },
        async () => {
          const state = await fleet.deploy('canary-witness-away');
          await fleet.witness.kill();
          const r = await fleet.cli(
            [
              'canary',
              '--steps',
              '1,100%',
              '--monitor',
              '4s',
              '--interval',
              '500ms',
              ...RTT_BUDGET,
              '--consecutive-error-limit',
              '1000',
              '--set',
              'TURN_FALLBACK_TIMEOUT_MS=4322',
              '--json',
            ],
            state,
          );
          const waiting = spooled(state);
          expect(r.code, r.stderr).toBe(1);
          const s = canaryState(state);
          expect(s.status).toBe('failed');
          expect(s.message).toMatch(
            /analysis inconclusive in phase 1: .*witness_error_rate.* never measured/,
          );
          expect(s.failed_gate).toMatchObject({ gate: 'witness_error_rate', status: 'error' });
          expect(s.on_candidate).toEqual([]);
          const current = readFileSync(openStateDir(state).currentRelease, 'utf8').trim();
          expect(current).toBe(s.plan.stable.id);
          await fleet.witness.start();
          const { lost, convergeMs } = await converge(state, waiting, s.trace_id, s.analysis.checks);
          expect(lost).toEqual([]);
          return {
            observed: `inconclusive after ${s.analysis.checks} checks (witness gates never measured), rolled back; ${lost.length} of ${waiting.length} spooled events lost; re-run promoted`,
            figure: `0 lost, converged ${seconds(convergeMs)}`,
          };
        },
      ),
    240_000,
  );
});
