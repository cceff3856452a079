// Issue 23.1: `kill -9` at each step boundary of rotate-keys (the emergency one too), maintenance
// daily, certs rotate and failover cert (scenario D), on one deploy-made TLS fleet (two instances
// serving wss with a self-signed certificate that every command trusts as its own CA, Redis, nginx,
// three agents). After each kill the state is consistent and `status` names the interrupted run; the
// same command again converges: every agent rotated and the rotation recorded, the emergency
// rotation answering the incident it had declared (not a second one), the daily report written, the
// certificate pair on disk matching and served by every instance. In the full tier (~5 min).
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listIncidents } from '../../src/ops/incident/store.js';
import { CERT_ROTATION_STEPS, KEY_ROTATION_STEPS, PROCEDURE_STEPS } from '../../src/ops/procedure.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { dir, env } from '../e2e/rollout-fixture.js';
import { spawnCli } from '../helpers/cli.js';
import { deployArgv } from '../helpers/deploy.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { makeCert, servedFingerprint } from '../helpers/tls.js';
import { expectConverged, expectInterrupted, forgetInterrupted, killAt } from './crash.js';
import { outOf, withFigure } from './figures.js';

const state = path.join(dir, 'crash-tls');
const certs = path.join(dir, 'certs');
const cert = path.join(certs, 'signaling.crt');
const key = path.join(certs, 'signaling.key');
const tenv: Record<string, string> = {};
let base = 0;

beforeAll(async () => {
  mkdirSync(certs, { recursive: true });
  // Valid for 60 days: maintenance daily finds nothing to tell, certs rotate nothing due without --force.
  makeCert(certs, 'signaling', 60, 'DNS:localhost,IP:127.0.0.1');
  const file = path.join(dir, 'crash-tls.env');
  writeFileSync(
    file,
    [
      'SIGNALING_HOST=127.0.0.1',
      'SIGNALING_TLS_CERT=certs/signaling.crt',
      'SIGNALING_TLS_KEY=certs/signaling.key',
      // The certificate is its own CA: a command reads the file at start, so it trusts whatever pair
      // a rotation installed before it ran.
      'IFMESH_CA_FILE=certs/signaling.crt',
      'SIGNALING_ADMIN_TOKEN=crash-tls-admin-token',
      '',
    ].join('\n'),
  );
  Object.assign(tenv, env, { IFMESH_CONFIG: file });
  base = await freePortRange(3);
  const r = await spawnCli(
    deployArgv({
      instances: 2,
      base,
      nginxPort: await freePort(),
      state,
      more: ['--label', 'v1'],
    }),
    { cwd: dir, env: tenv, timeoutMs: 90_000 },
  );
  expect(r.code, r.stderr).toBe(0);
}, 120_000);
// A drill that failed must not fail the next ones: what it left interrupted is forgotten.
beforeEach(() => {
  forgetInterrupted(state);
});
afterAll(async () => {
  await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 60_000 });
}, 90_000);

const cli = (argv: string[], timeoutMs = 150_000) =>
  spawnCli([...argv, '--state-dir', state], { cwd: dir, env: tenv, timeoutMs });

async function drill(procedure: string, step: string, argv: string[]) {
  const k = await killAt({
    argv: [...argv, '--state-dir', state],
    cwd: dir,
    env: tenv,
    state,
    procedure,
    step,
  });
  const { hint } = await expectInterrupted(k, { state, cwd: dir, env: tenv, procedure, step });
  return { k, hint };
}

/** The pair on disk matches, nothing is left staged, and every instance serves that certificate. */
async function expectPairServed(): Promise<void> {
  const check = await spawnCli(['certs', 'check', '--cert', cert, '--key', key, '--json'], {
    cwd: dir,
    env: tenv,
  });
  expect(JSON.parse(check.stdout).key_matches, check.stderr).toBe(true);
  expect(readdirSync(certs).filter((f) => f.includes('.rotating'))).toEqual([]);
  const disk = new X509Certificate(readFileSync(cert)).fingerprint256;
  for (const port of [base, base + 1]) expect(await servedFingerprint(port)).toBe(disk);
}

describe('rotate-keys, kill -9 at each step boundary', () => {
  for (const step of KEY_ROTATION_STEPS)
    it(
      `killed after ${step}: status names it, rotate-keys again converges`,
      () =>
        withFigure(
          {
            fault: `rotate-keys kill -9 after ${step}, then rotate-keys again`,
            trials: 1,
            expected:
              step === 'incident_declared'
                ? 'status names it; rotate-keys --emergency again answers the incident declared (no second one), every agent rotated'
                : 'status names it; rotate-keys again rotates every agent and records it, fleet healthy',
          },
          async () => {
            const emergency = step === 'incident_declared' ? ['--emergency', '--no-notify'] : [];
            const argv = ['rotate-keys', ...emergency, '--settle', '3s', '--timeout', '30s', '--json'];
            const incidents = listIncidents(openStateDir(state)).length;
            const { k, hint } = await drill('rotate-keys', step, argv);
            expect(hint).toContain(
              emergency.length ? 'ifmesh rotate-keys --emergency' : 'ifmesh rotate-keys',
            );
            const again = await cli(argv);
            expect(again.code, again.stderr).toBe(0);
            const report = JSON.parse(again.stdout);
            expect(report).toMatchObject({ ok: true, pending: [] });
            const record = JSON.parse(readFileSync(openStateDir(state).keyRotation, 'utf8'));
            expect(record).toMatchObject({ ok: true, completed: report.total });
            if (emergency.length) {
              // The incident the killed run declared is the one answered: one incident, not two.
              expect(report.plan.incident_id).toBe(k.journal.data.incident_id);
              expect(report.incident_declared).toBeNull();
              expect(listIncidents(openStateDir(state))).toHaveLength(incidents + 1);
              const done = await cli(['incident', 'resolve', report.plan.incident_id, '--json']);
              expect(done.code, done.stderr).toBe(0);
            }
            await expectConverged({ state, cwd: dir, env: tenv, procedure: 'rotate-keys' });
            return {
              observed: 'interrupted rotation named; run again, every agent rotated',
              figure: `converged ${outOf(1, 1)}`,
            };
          },
        ),
      120_000,
    );
});

describe('maintenance daily, kill -9 at each step boundary', () => {
  for (const step of PROCEDURE_STEPS['maintenance-daily'])
    it(
      `killed after ${step}: status names it, the next run takes the lock over and writes the report`,
      () =>
        withFigure(
          {
            fault: `maintenance daily kill -9 after ${step}, then maintenance daily again`,
            trials: 1,
            expected:
              'status names it; the next run takes over the dead run’s lock and writes the daily report',
          },
          async () => {
            const argv = ['maintenance', 'daily', '--no-notify', '--json'];
            const s = openStateDir(state);
            await drill('maintenance-daily', step, argv);
            expect(existsSync(s.lock('maintenance'))).toBe(true);
            const again = await cli(argv);
            // 75 would be the dead run's lock refusing it; findings (the witness's cleanup key) may make it 1.
            expect([0, 1], again.stderr).toContain(again.code);
            const report = JSON.parse(again.stdout);
            expect(JSON.parse(readFileSync(report.report_file, 'utf8')).maintenance_id).toBe(
              report.maintenance_id,
            );
            expect(existsSync(s.lock('maintenance'))).toBe(false);
            await expectConverged({ state, cwd: dir, env: tenv, procedure: 'maintenance-daily' });
            return {
              observed: 'interrupted run named; the next one took the lock over, report written',
              figure: `converged ${outOf(1, 1)}`,
            };
          },
        ),
      120_000,
    );
});

describe('certs rotate, kill -9 at each step boundary', () => {
  for (const step of CERT_ROTATION_STEPS)
    it(
      `killed after ${step}: status names it, certs rotate again leaves one matching pair served everywhere`,
      () =>
        withFigure(
          {
            fault: `certs rotate kill -9 after ${step}, then certs rotate again`,
            trials: 1,
            expected:
              'status names it; certs rotate again (not forced) installs what was staged and restarts every instance on the old pair; the pair matches, every instance serves it',
          },
          async () => {
            const { hint } = await drill('certs-rotate', step, [
              'certs',
              'rotate',
              '--self-signed-dev',
              '--force',
              '--json',
            ]);
            // The hint's command: not forced, the new certificate is not due.
            expect(hint).toContain(`ifmesh certs rotate --cert ${cert} --key ${key} --self-signed-dev`);
            const again = await cli([
              'certs',
              'rotate',
              '--cert',
              cert,
              '--key',
              key,
              '--self-signed-dev',
              '--json',
            ]);
            expect(again.code, again.stderr).toBe(0);
            const report = JSON.parse(again.stdout);
            expect(report.renewed).toBe(false);
            // Everything after the pair was staged left instances on the old pair: restarted now.
            const stale = step === 'backed_up' ? 0 : step === 'instance_restarted' ? 1 : 2;
            expect(report.restarts).toHaveLength(stale);
            await expectPairServed();
            await expectConverged({ state, cwd: dir, env: tenv, procedure: 'certs-rotate' });
            return {
              observed: 'interrupted rotation named; run again, one matching pair served everywhere',
              figure: `converged ${outOf(1, 1)}`,
            };
          },
        ),
      120_000,
    );
});

describe('certs rotate killed, then the nightly maintenance daily --renew', () => {
  it(
    'installs the staged pair and restarts the instances on the old one; status is healthy again',
    () =>
      withFigure(
        {
          fault: 'certs rotate kill -9 after staged, then maintenance daily --renew',
          trials: 1,
          expected:
            'maintenance daily --renew installs the staged pair, restarts every instance on the old one; the rotation no longer interrupted',
        },
        async () => {
          await drill('certs-rotate', 'staged', [
            'certs',
            'rotate',
            '--self-signed-dev',
            '--force',
            '--json',
          ]);
          const daily = await cli(['maintenance', 'daily', '--renew', '--no-notify', '--json']);
          // Findings (the witness's cleanup key) may make it 1; the certificate is not among them.
          const report = JSON.parse(daily.stdout);
          expect(report.renewal, daily.stderr).toMatchObject({ ok: true, renewed: false });
          expect(report.renewal.restarts).toHaveLength(2);
          expect(report.needs_human.filter((n: string) => n.startsWith('certificate'))).toEqual([]);
          await expectPairServed();
          const journal = JSON.parse(readFileSync(openStateDir(state).procedureFile('certs-rotate'), 'utf8'));
          expect(journal).toMatchObject({ status: 'completed', completed_by: 'maintenance daily --renew' });
          await expectConverged({ state, cwd: dir, env: tenv, procedure: 'maintenance-daily' });
          return {
            observed: 'the nightly run installed the staged pair, restarted both instances, fleet healthy',
            figure: `converged ${outOf(1, 1)}`,
          };
        },
      ),
    150_000,
  );
});

describe('failover cert (scenario D), kill -9 at each step boundary', () => {
  beforeAll(async () => {
    // Due for scenario D, which renews under 7 days left (it has no --force).
    const r = await cli(['certs', 'rotate', '--self-signed-dev', '--force', '--days', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);
  const argv = [
    'failover',
    'cert',
    '--self-signed-dev',
    '--days',
    '3',
    '--max-rtt-p95',
    '10s',
    '--loopback',
    '--agents',
    '2',
    '--messages',
    '2',
    '--json',
  ];
  for (const step of PROCEDURE_STEPS['failover-cert'])
    it(
      `killed after ${step}: status names it, the same failover again rotates and serves one pair`,
      () =>
        withFigure(
          {
            fault: `failover cert kill -9 after ${step}, then the same failover again`,
            trials: 1,
            expected:
              'status names it; the same failover again completes the rotation; the pair matches, every instance serves it',
          },
          async () => {
            await drill('failover-cert', step, argv);
            const again = await cli(argv);
            const doc = JSON.parse(again.stdout || '{}');
            expect(doc.report?.cert, again.stderr).toMatchObject({ ok: true, renewed: true });
            await expectPairServed();
            await expectConverged({ state, cwd: dir, env: tenv, procedure: 'failover-cert' });
            return {
              observed: 'interrupted failover named; run again, one matching pair served everywhere',
              figure: `converged ${outOf(1, 1)}`,
            };
          },
        ),
      150_000,
    );
});
