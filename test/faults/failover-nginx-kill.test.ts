// nginx dies during failover B (issue 23.2): a deployed fleet whose two signaling instances run as
// active + hot standby behind nginx (a host without redis-server: deploy's standby topology), the
// active instance SIGKILLed, and `ifmesh failover signaling --action promote-backup` run, which
// rewrites nginx's upstreams, reloads it and watches the promoted instance THROUGH nginx for the
// stabilisation window.
//   - nginx already dead when the failover reaches it: the failover starts it with the promoted
//     configuration (under the stack's own record of it) and completes.
//   - nginx SIGKILLed inside the stabilisation window: the failover ends failed (exit 1) naming nginx
//     as the reason, its trail ends with failover_completed ok=false; the same command run again
//     starts nginx on the promoted configuration and completes.
// Figure per case: the outcome, events lost (the failover's trail: every step it reported is stored,
// and its ending; must be 0), and the time from the fault to a completed run.
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { trackPid } from '../helpers/pids.js';
import { waitFor } from '../helpers/wait.js';
import { withFigure } from './figures.js';
import { faultFleet, seconds, storedBy } from './fleet-fixture.js';

const fleet = faultFleet();

/** A PATH like this one without redis-server: a host where deploy runs hot standbys. */
function pathWithoutRedis(dir: string): string {
  const bin = path.join(dir, 'bin-no-redis');
  if (existsSync(bin)) return bin;
  mkdirSync(bin);
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (!d || !existsSync(d)) continue;
    for (const n of readdirSync(d))
      if (!n.startsWith('redis-') && !existsSync(path.join(bin, n)))
        symlinkSync(path.join(d, n), path.join(bin, n));
  }
  return bin;
}

/** A standby fleet (nothing restarts a killed process: the failover is what recovers it). */
async function standbyFleet(name: string) {
  const env = { PATH: pathWithoutRedis(fleet.dir) };
  const state = await fleet.deploy(name, 2, { env, more: ['--supervisor', 'none'] });
  const recs = listProcesses(openStateDir(state));
  const rec = (n: string) => recs.find((r) => r.name === n)!;
  const active = rec('deploy-signaling-1');
  expect(JSON.parse((await fleet.cli(['status', '--json'], state, { env })).stdout).signaling_mode).toBe(
    'standby',
  );
  const failover = () =>
    fleet.start(
      [
        'failover',
        'signaling',
        '--failed',
        `ws://127.0.0.1:${active.port}`,
        '--action',
        'promote-backup',
        '--stabilize',
        '6s',
        '--loopback',
        '--max-rtt-p95',
        '10s',
        '--json',
        '--state-dir',
        state,
      ],
      env,
    );
  const nginxPid = () => listProcesses(openStateDir(state)).find((r) => r.role === 'nginx')!.pid;
  return { env, state, active, standby: rec('deploy-signaling-2'), failover, nginxPid };
}

/** The failover's trail in the witness, checked against what its report says it did. */
function trail(doc: {
  report: { failover_id: string; steps: { step: string; ok: boolean }[] };
  ok: boolean;
}) {
  const events = storedBy(fleet.witness.db, 'failover_id', doc.report.failover_id).map((e) => e.event);
  const steps = events.filter((e) => e === 'failover_step').length;
  expect(steps).toBe(doc.report.steps.length);
  expect(events.filter((e) => e === 'failover_initiated')).toHaveLength(1);
  expect(events.filter((e) => e === 'failover_completed')).toHaveLength(1);
  return { events: events.length, lost: doc.report.steps.length - steps };
}

const conf = (state: string) => readFileSync(openStateDir(state).nginxConf, 'utf8');

/** The nginx master's workers (its children, from /proc). */
function workersOf(master: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === master;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** `kill -9 $(cat nginx.pid)`: the master dies, its workers live on holding the port. */
function killMaster(master: number): number[] {
  const workers = workersOf(master);
  expect(workers.length).toBeGreaterThan(0);
  for (const w of workers) trackPid(w);
  process.kill(master, 'SIGKILL');
  return workers;
}

describe('nginx killed during failover B (promote the backup)', () => {
  it(
    'dead when the failover reaches it: started with the promoted configuration, the failover completes',
    () =>
      withFigure(
        {
          fault: 'nginx master kill -9 before failover B (promote-backup) reloads it',
          trials: 1,
          expected: 'failover starts nginx on the promoted config and completes (exit 0); trail whole',
        },
        async () => {
          const f = await standbyFleet('fo-b-dead');
          process.kill(f.active.pid, 'SIGKILL');
          const nginx = f.nginxPid();
          const workers = killMaster(nginx);
          await waitFor(() => !isAlive(nginx), 'the nginx master gone');
          const t0 = Date.now();
          const r = await f.failover().done;
          expect(r.code, r.stderr).toBe(0);
          const doc = JSON.parse(r.stdout);
          expect(doc.report.steps.find((s: { step: string }) => s.step === 'promote backup').detail).toMatch(
            /nginx started, pid \d+/,
          );
          // Started under the stack's own record, so `status` and `down` see it.
          const rec = listProcesses(openStateDir(f.state)).filter((p) => p.role === 'nginx');
          expect(rec.map((p) => p.name)).toEqual(['deploy-nginx']);
          expect(isAlive(rec[0]!.pid)).toBe(true);
          expect(conf(f.state)).toContain(`server 127.0.0.1:${f.active.port} backup;`);
          // The workers the dead master left on the port were stopped, so the new one could bind it.
          expect(workers.filter(isAlive)).toEqual([]);
          const { events, lost } = trail(doc);
          return {
            observed: `completed: the dead master's ${workers.length} workers stopped, nginx started on the promoted config; trail ${events} events, ${lost} lost`,
            figure: `0 lost, converged ${seconds(Date.now() - t0)}`,
          };
        },
      ),
    240_000,
  );

  it(
    'killed in the stabilisation window: the failover fails naming nginx; run again, it starts nginx and completes',
    () =>
      withFigure(
        {
          fault: 'nginx master kill -9 in failover B’s stabilisation window',
          trials: 1,
          expected:
            'failover exit 1 naming nginx, trail ends failover_completed ok=false; re-run starts nginx, completes (exit 0)',
        },
        async () => {
          const f = await standbyFleet('fo-b-window');
          process.kill(f.active.pid, 'SIGKILL');
          const run = f.failover();
          await waitFor(() => /✓ promote backup/.test(run.stderr()), 'the backup promoted', {
            timeoutMs: 60_000,
            intervalMs: 20,
          });
          const workers = killMaster(f.nginxPid());
          const killed = Date.now();
          const r = await run.done;
          expect(r.code, r.stderr).toBe(1);
          const doc = JSON.parse(r.stdout);
          expect(doc.ok).toBe(false);
          const window = doc.report.steps.find((s: { step: string }) => s.step === 'stabilisation');
          expect(window.ok).toBe(false);
          expect(window.detail).toMatch(
            /nginx \(deploy-nginx, pid \d+\) is not running.*: run this failover again/,
          );
          const first = trail(doc);
          // The trail ends the run as it ended: not ok.
          const ended = storedBy(fleet.witness.db, 'failover_id', doc.report.failover_id);
          expect(ended.find((e) => e.event === 'failover_completed')?.metadata.ok).toBe(false);

          const again = await f.failover().done;
          expect(again.code, again.stderr).toBe(0);
          const doc2 = JSON.parse(again.stdout);
          // The first run rewrote the configuration before nginx died: the second has nothing to rewrite.
          expect(doc2.plan.steps[0]).toMatch(/^nothing to rewrite: .* is a backup already, .* active/);
          expect(doc2.plan.promote_backup.already_promoted).toBe(true);
          const second = trail(doc2);
          expect(conf(f.state)).toContain(`server 127.0.0.1:${f.active.port} backup;`);
          const st = await fleet.cli(['status', '--json'], f.state, { env: f.env });
          const nginxNow = JSON.parse(st.stdout).components.find((c: { role: string }) => c.role === 'nginx');
          expect(nginxNow).toMatchObject({ name: 'deploy-nginx', running: true, healthy: true });
          expect(workers.filter(isAlive)).toEqual([]);
          return {
            observed: `failed naming nginx (stabilisation: ${window.detail.split('; ')[1]?.split(':')[0]}); re-run completed; trails ${first.events}+${second.events} events, ${first.lost + second.lost} lost`,
            figure: `0 lost, converged ${seconds(Date.now() - killed)}`,
          };
        },
      ),
    240_000,
  );
});
