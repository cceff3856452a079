// Issue 23.1: `kill -9` of `ifmesh failover` at each step boundary of every scenario that runs on a
// plain deploy-made fleet: A (turn), B by restart and by promoting the backup, C (partition), E
// (keys); D (cert) is in crash-certs.test.ts, on a TLS fleet. The fleet is deployed without Redis
// (redis-server kept off the PATH), so it runs one active instance and a hot standby behind nginx,
// which promote-backup needs. After each kill the state is consistent and `status` names the
// interrupted failover; the same failover run again converges: its steps pass, every agent is
// registered, `status` is healthy. In the full tier (~6 min).
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PROCEDURE_STEPS } from '../../src/ops/procedure.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { AGENTS, dir, env } from '../e2e/rollout-fixture.js';
import { spawnCli } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { getJson } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { expectConverged, expectInterrupted, forgetInterrupted, killAt } from './crash.js';
import { outOf, withFigure } from './figures.js';

const state = path.join(dir, 'crash-failover');
const fenv: Record<string, string> = {};
let base = 0;

/** A PATH with every program of this one but redis-server: deploy then runs active + standby. */
function pathWithoutRedis(): string {
  const bin = path.join(dir, 'bin-no-redis');
  mkdirSync(bin, { recursive: true });
  const seen = new Set<string>();
  for (const d of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (seen.has(n) || n.startsWith('redis-server')) continue;
      seen.add(n);
      symlinkSync(path.join(d, n), path.join(bin, n));
    }
  }
  return bin;
}

beforeAll(async () => {
  Object.assign(fenv, env, {
    PATH: pathWithoutRedis(),
    SIGNALING_ADMIN_TOKEN: 'crash-failover-admin-token',
    // The fleet's TURN server as configured: the one failover turn replaces (nothing listens there).
    TURN_SERVERS: 'turn:127.0.0.1:9',
    TURN_USERNAME: 'ifmesh',
    TURN_PASSWORD: 'test-pass',
  });
  base = await freePortRange(2);
  const r = await spawnCli(
    [
      'deploy',
      '--json',
      '--instances',
      '2',
      '--base-port',
      String(base),
      '--nginx-port',
      String(await freePort()),
      '--label',
      'v1',
      '--state-dir',
      state,
    ],
    { cwd: dir, env: fenv, timeoutMs: 90_000 },
  );
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout).plan.signaling_mode).toBe('standby');
}, 120_000);
// A drill that failed must not fail the next ones: what it left interrupted is forgotten.
beforeEach(() => {
  forgetInterrupted(state);
});
afterAll(async () => {
  await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 60_000 });
}, 90_000);

const cli = (argv: string[], timeoutMs = 150_000) =>
  spawnCli([...argv, '--state-dir', state], { cwd: dir, env: fenv, timeoutMs });
const VALIDATION = ['--max-rtt-p95', '10s', '--loopback', '--agents', '2', '--messages', '2'];
const turnPort = () => /:(\d+)$/.exec(env.STUN_SERVERS!)![1];
const nginxPlan = () =>
  JSON.parse(readFileSync(path.join(openStateDir(state).nginx, 'nginx.plan.json'), 'utf8')) as {
    upstreams: number[];
    backups: number[];
  };

/** Every agent registered on one of the two instances (after a restart some sit on the standby). */
async function allRegistered(): Promise<boolean> {
  const ids = new Set<string>();
  for (const port of [base, base + 1]) {
    const r = await getJson(`http://127.0.0.1:${port}/agents`).catch(() => undefined);
    for (const a of (r?.json?.agents ?? []) as { agent_id: string }[]) ids.add(a.agent_id);
  }
  return AGENTS.every((a) => ids.has(a));
}

const SCENARIOS = [
  {
    procedure: 'failover-partition',
    argv: () => ['failover', 'partition', '--agent', AGENTS[0]!, '--stagger', '100ms'],
    rerun: 'ifmesh failover partition',
  },
  {
    procedure: 'failover-turn',
    argv: () => [
      'failover',
      'turn',
      '--failed',
      'turn:127.0.0.1:9',
      '--replacement',
      `turn:127.0.0.1:${turnPort()}`,
    ],
    rerun: 'ifmesh failover turn',
  },
  { procedure: 'failover-keys', argv: () => ['failover', 'keys'], rerun: 'ifmesh failover keys' },
  {
    procedure: 'failover-signaling',
    argv: () => [
      'failover',
      'signaling',
      '--failed',
      `ws://127.0.0.1:${nginxPlan().upstreams[0]}`,
      '--action',
      'restart',
      '--stabilize',
      '2s',
    ],
    rerun: '--action restart',
  },
  {
    procedure: 'failover-promote-backup',
    argv: () => [
      'failover',
      'signaling',
      '--failed',
      `ws://127.0.0.1:${nginxPlan().upstreams[0]}`,
      '--action',
      'promote-backup',
      '--stabilize',
      '2s',
    ],
    rerun: '--action promote-backup',
  },
] as const;

describe('failover, kill -9 at each step boundary of each scenario', () => {
  for (const s of SCENARIOS)
    for (const step of PROCEDURE_STEPS[s.procedure])
      it(
        `${s.procedure} killed after ${step}: status names it, the same failover again converges`,
        () =>
          withFigure(
            {
              fault: `${s.procedure.replace('-', ' ')} kill -9 after ${step}, then the same failover again`,
              trials: 1,
              expected:
                'status names the interrupted failover (exit 1); the same failover again passes its steps, every agent registered, fleet healthy',
            },
            async () => {
              // Fixed before the kill: promote-backup run again names the instance it demoted.
              const argv = [...s.argv(), ...VALIDATION, '--json'];
              const k = await killAt({
                argv: [...argv, '--state-dir', state],
                cwd: dir,
                env: fenv,
                state,
                procedure: s.procedure,
                step,
              });
              const { hint } = await expectInterrupted(k, {
                state,
                cwd: dir,
                env: fenv,
                procedure: s.procedure,
                step,
              });
              expect(hint).toContain(s.rerun);

              const again = await cli(argv);
              const doc = JSON.parse(again.stdout || '{}');
              expect(
                doc.report?.steps?.filter((x: { ok: boolean }) => !x.ok),
                again.stderr,
              ).toEqual([]);
              expect(doc.report.ok).toBe(true);
              const checks = Object.fromEntries(
                doc.validation.checks.map((c: { name: string; passed: boolean }) => [c.name, c.passed]),
              );
              expect(checks, JSON.stringify(doc.validation.checks)).toMatchObject({
                registration: true,
                message_delivery: true,
              });
              await waitFor(allRegistered, 'every agent registered again', { timeoutMs: 30_000 });
              await expectConverged({ state, cwd: dir, env: fenv, procedure: s.procedure });
              return {
                observed: 'interrupted failover named; run again, its steps passed and the fleet is healthy',
                figure: `converged ${outOf(1, 1)}`,
              };
            },
          ),
        240_000,
      );
});
