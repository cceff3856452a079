// The state's supervisor (src/ops/fleet/watchdog.ts) on real processes: a supervised process killed
// with SIGKILL is restarted from its launch spec; one that keeps dying is left crash-looping after
// its tries; one stopped on purpose, or not supervised, is left alone.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getGlobalDispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { applyNginx } from '../../src/exec/nginx.js';
import { isAlive } from '../../src/exec/pid.js';
import { Supervisor } from '../../src/ops/fleet/supervisor.js';
import { type WatchdogEvent, watchdogPass } from '../../src/ops/fleet/watchdog.js';
import { readProcess, scanProcesses } from '../../src/state/processes.js';
import { readSecrets } from '../../src/state/secrets.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { systemExec } from '../../src/util/exec.js';
import { requireBinary } from '../helpers/binaries.js';
import { tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { freePort } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SLEEPER = 'setInterval(() => {}, 1 << 30); process.on("SIGTERM", () => process.exit(0));';

function setup() {
  const t = tempDir();
  const sup = new Supervisor(openStateDir(t.dir), { clock: systemClock, owner: 'test' });
  const started: number[] = [];
  cleanups.push(t.cleanup);
  cleanups.push(async () => {
    // What reads: one test leaves a torn record behind on purpose.
    for (const r of scanProcesses(openStateDir(t.dir)).records) started.push(r.pid);
    for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  const start = (name: string, code: string, supervised = true, env: Record<string, string> = {}) => {
    const pid = sup.start({
      name,
      role: 'coturn',
      command: process.execPath,
      args: ['-e', code],
      env,
      supervised,
    });
    trackPid(pid);
    started.push(pid);
    return pid;
  };
  return { dir: t.dir, sup, start, started };
}

const ctx = { clock: systemClock, signal: new AbortController().signal, dispatcher: getGlobalDispatcher() };

describe('watchdog', () => {
  it('restarts a SIGKILLed supervised process from its spec, secrets from the secrets file, and counts it', async () => {
    const { dir, start, started } = setup();
    const pid = start('svc', `${SLEEPER} console.log("secret=" + process.env.TURN_PASSWORD)`, true, {
      TURN_PASSWORD: 'not-in-the-record',
      PLAIN: 'x',
    });
    const rec = readProcess(openStateDir(dir), 'svc')!;
    // The secret's name is recorded, its value only in the secrets file.
    expect(rec.spec).toMatchObject({
      command: process.execPath,
      env: { PLAIN: 'x' },
      secret_env: ['TURN_PASSWORD'],
    });
    expect(JSON.stringify(rec)).not.toContain('not-in-the-record');
    expect(readSecrets(openStateDir(dir))?.env?.['process:svc:TURN_PASSWORD']).toBe('not-in-the-record');
    const printed = (n: number) => () =>
      readFileSync(`${dir}/logs/svc.log`, 'utf8').split('secret=not-in-the-record').length === n + 1;
    await waitFor(printed(1), 'the process to print its secret');
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid), 'the process to die');
    const events: WatchdogEvent[] = [];
    const done = await watchdogPass(
      { state: openStateDir(dir), onEvent: (e) => events.push(e) },
      new Map(),
      ctx,
    );
    expect(done.map((d) => [d.name, d.result?.ok])).toEqual([['svc', true]]);
    const after = readProcess(openStateDir(dir), 'svc')!;
    started.push(after.pid);
    expect(after.pid).not.toBe(pid);
    expect(isAlive(after.pid)).toBe(true);
    expect(after.restarts).toBe(1);
    expect(after.spec).toEqual(rec.spec);
    expect(events).toMatchObject([{ event: 'service_restarted', name: 'svc', restarts: 1 }]);
    await waitFor(printed(2), 'the restarted process to get its secret back');
    expect(readFileSync(`${dir}/logs/svc.log`, 'utf8')).toContain(
      `restarted by the supervisor: process ${pid} was gone`,
    );
  });

  it('leaves a process that keeps dying crash-looping after its tries, and says so in its record', async () => {
    const { dir, start } = setup();
    start('flaky', 'process.exit(1)');
    const events: WatchdogEvent[] = [];
    const tracks = new Map();
    const o = {
      state: openStateDir(dir),
      maxTries: 2,
      backoffMs: [0],
      onEvent: (e: WatchdogEvent) => events.push(e),
    };
    for (let i = 0; i < 3; i++) {
      await waitFor(() => !isAlive(readProcess(openStateDir(dir), 'flaky')!.pid), 'the last run to exit');
      await watchdogPass(o, tracks, ctx);
    }
    // Each restart may look fine for a moment; dying again within the window is what counts.
    expect(events.map((e) => e.event).at(-1)).toBe('service_crash_loop');
    expect(events.filter((e) => e.event !== 'service_crash_loop')).toHaveLength(2);
    const rec = readProcess(openStateDir(dir), 'flaky')!;
    expect(rec.crash_loop).toMatchObject({ tries: 2 });
    // No more tries once crash-looping.
    expect(await watchdogPass(o, tracks, ctx)).toEqual([]);
  });

  it('restarts a SIGKILLed nginx front door (adopted, no launch spec) from its plan', async () => {
    requireBinary('nginx', 'nginx');
    const { dir, sup, started } = setup();
    const state = openStateDir(dir);
    // The instance behind it: answers /health as signaling does.
    const backend = createServer((_req, res) => res.end('{"status":"ok"}'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => backend.close(r)));
    const port = await freePort();
    const plan = {
      prefix: state.nginx,
      listenPort: port,
      upstreams: [(backend.address() as AddressInfo).port],
      errorLog: state.logFile('nginx'),
    };
    const master = await applyNginx(plan, false, { exec: systemExec, clock: systemClock });
    started.push(master);
    cleanups.push(() => sup.stop('nginx', 2_000));
    sup.adopt({ name: 'nginx', role: 'nginx', port, url: `http://127.0.0.1:${port}` }, master, {
      supervised: true,
    });
    process.kill(master, 'SIGKILL');
    await waitFor(() => !isAlive(master), 'the nginx master to die');
    const [done] = await watchdogPass({ state }, new Map(), ctx);
    expect(done?.result, JSON.stringify(done)).toMatchObject({ name: 'nginx', ok: true });
    const now = readProcess(state, 'nginx')!;
    started.push(now.pid);
    expect(now.pid).not.toBe(master);
    expect(now).toMatchObject({ restarts: 1, supervised: true });
    const health = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5_000) });
    expect(await health.text()).toBe('{"status":"ok"}');
    expect(readFileSync(state.logFile('nginx'), 'utf8')).toContain('restarted by the supervisor');
  });

  it('leaves alone what is not supervised and what a procedure stops on purpose', async () => {
    const { dir, sup, start } = setup();
    const loose = start('loose', SLEEPER, false);
    start('kept', SLEEPER, true);
    process.kill(loose, 'SIGKILL');
    await waitFor(() => !isAlive(loose), 'the unsupervised process to die');
    expect(await sup.stop('kept', 2_000)).toBe('stopped');
    expect(await watchdogPass({ state: openStateDir(dir) }, new Map(), ctx)).toEqual([]);
    expect(readProcess(openStateDir(dir), 'kept')).toBeUndefined();
  });

  it('counts a restart that throws (its lock held past the wait) as failed, and goes on to the next', async () => {
    const { dir, start } = setup();
    const state = openStateDir(dir);
    const stuck = start('stuck', SLEEPER, true);
    const other = start('other', SLEEPER, true);
    // Another live process holds stuck's restart lock for good.
    writeFileSync(
      state.lock('restart-stuck'),
      JSON.stringify({ pid: process.pid, purpose: 'held', since: new Date().toISOString(), token: 'x' }),
    );
    for (const pid of [stuck, other]) process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(stuck) && !isAlive(other), 'both to die');
    // The lock wait runs on this clock: it runs out at once.
    let t = Date.now();
    const fast = {
      ...systemClock,
      now: () => t,
      sleep: async (ms: number) => {
        t += ms;
      },
    };
    const events: WatchdogEvent[] = [];
    const done = await watchdogPass({ state, onEvent: (e) => events.push(e) }, new Map(), {
      ...ctx,
      clock: fast,
    });
    expect(done.map((d) => [d.name, d.result?.ok]).sort()).toEqual([
      ['other', true],
      ['stuck', false],
    ]);
    expect(events.find((e) => e.name === 'stuck')).toMatchObject({
      event: 'service_restart_failed',
      detail: expect.stringContaining('stuck is being restarted by someone else (locked)'),
    });
    expect(isAlive(readProcess(state, 'other')!.pid)).toBe(true);
  });

  it('goes on watching the others when one record no longer parses, and names that record once', async () => {
    const { dir, start } = setup();
    const state = openStateDir(dir);
    const pid = start('svc', SLEEPER, true);
    writeFileSync(state.processFile('torn'), '{"name":"torn","role":"signaling","pid":1');
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid), 'the process to die');
    const events: WatchdogEvent[] = [];
    const tracks = new Map();
    const o = { state, onEvent: (e: WatchdogEvent) => events.push(e) };
    const done = await watchdogPass(o, tracks, ctx);
    expect(done.map((d) => [d.name, d.result?.ok])).toEqual([['svc', true]]);
    expect(isAlive(readProcess(state, 'svc')!.pid)).toBe(true);
    expect(events.map((e) => [e.event, e.name])).toEqual([
      ['service_record_unreadable', 'torn'],
      ['service_restarted', 'svc'],
    ]);
    expect(events[0]!.detail).toContain(`${state.processFile('torn')} is corrupted`);
    // Named once, not at every pass; again once it was removed and broke anew.
    await watchdogPass(o, tracks, ctx);
    expect(events).toHaveLength(2);
    rmSync(state.processFile('torn'));
    await watchdogPass(o, tracks, ctx);
    writeFileSync(state.processFile('torn'), '');
    await watchdogPass(o, tracks, ctx);
    expect(events.map((e) => e.event)).toEqual([
      'service_record_unreadable',
      'service_restarted',
      'service_record_unreadable',
    ]);
  });
});
