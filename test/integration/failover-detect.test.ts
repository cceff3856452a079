// `failover signaling` without --failed: which recorded instance it calls failed, against real HTTP
// servers answering /health as told. A slow or briefly failing instance is not restarted (a restart
// drops the agents it holds); a gone process, or a live one that never answers, is.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Agent, getGlobalDispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { failedSignalingInstance } from '../../src/ops/failover/scenarios.js';
import { restartRecorded } from '../../src/ops/fleet/restart.js';
import { readProcess, recordProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { requireBinary } from '../helpers/binaries.js';
import { tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { makeTlsCerts } from '../helpers/tls.js';

const servers: Server[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  for (const c of cleanups.splice(0)) c();
});

/** A /health that answers ok from its `okFrom`-th request on (Infinity: never). */
async function health(okFrom: number): Promise<{ port: number; asked: () => number }> {
  let n = 0;
  const s = createServer((_req, res) => {
    n += 1;
    if (n >= okFrom) res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    else res.writeHead(503).end('{"status":"draining"}');
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { port: (s.address() as { port: number }).port, asked: () => n };
}

function stateWith(instances: { name: string; port: number; pid: number; scheme?: string }[]) {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const state = openStateDir(t.dir);
  for (const i of instances)
    recordProcess(state, {
      name: i.name,
      role: 'signaling',
      pid: i.pid,
      started_at: new Date().toISOString(),
      owner: 'test',
      port: i.port,
      url: `${i.scheme ?? 'ws'}://127.0.0.1:${i.port}`,
      // What the restart path would launch: never reached by these tests.
      spec: { command: 'false', args: [], cwd: t.dir, env: {}, secret_env: [] },
    });
  return state;
}

/** An https /health answering ok, with a certificate from a private CA (made by openssl here). */
async function tlsHealth(): Promise<{ port: number; ca: string }> {
  requireBinary('openssl', 'openssl');
  const t = tempDir();
  cleanups.push(t.cleanup);
  const { ca, server } = makeTlsCerts(t.dir);
  const s = createHttpsServer(
    { cert: readFileSync(server.cert), key: readFileSync(server.key) },
    (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'),
  );
  servers.push(s as unknown as Server);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { port: (s.address() as { port: number }).port, ca: readFileSync(ca.cert, 'utf8') };
}

const slept: number[] = [];
const clock = { ...systemClock, sleep: async (ms: number) => void slept.push(ms) };
// A pid that existed and is gone: a child that has exited and been reaped.
const gonePid = spawnSync(process.execPath, ['-e', '0']).pid!;

describe('failover signaling without --failed', () => {
  it('names a live instance that never answers /health, after three probes a second apart', async () => {
    const [good, mute] = [await health(1), await health(Number.POSITIVE_INFINITY)];
    const state = stateWith([
      { name: 'signaling-1', port: good.port, pid: process.pid },
      { name: 'signaling-2', port: mute.port, pid: process.pid },
    ]);
    slept.length = 0;
    const f = await failedSignalingInstance(state, { clock });
    expect(f).toMatchObject({ name: 'signaling-2', url: `ws://127.0.0.1:${mute.port}` });
    expect(f.why).toBe('/health unanswered 3 times over 2 s while its process runs');
    expect(mute.asked()).toBe(3);
    expect(slept).toEqual([1_000, 1_000]);
  });

  it('does not call one failed /health a failure, and names a gone process at once', async () => {
    const flaky = await health(2);
    const state = stateWith([{ name: 'signaling-1', port: flaky.port, pid: process.pid }]);
    await expect(failedSignalingInstance(state, { clock })).rejects.toThrow(/none failed/);
    expect(flaky.asked()).toBe(2);

    const gone = stateWith([
      { name: 'signaling-1', port: flaky.port, pid: process.pid },
      { name: 'signaling-2', port: (await health(1)).port, pid: gonePid },
    ]);
    expect(await failedSignalingInstance(gone, { clock })).toMatchObject({
      name: 'signaling-2',
      why: 'process gone',
    });
  });

  it('refuses to choose between two failed instances, naming both', async () => {
    const [a, b] = [await health(Number.POSITIVE_INFINITY), await health(Number.POSITIVE_INFINITY)];
    const state = stateWith([
      { name: 'signaling-1', port: a.port, pid: process.pid },
      { name: 'signaling-2', port: b.port, pid: gonePid },
    ]);
    await expect(failedSignalingInstance(state, { clock })).rejects.toThrow(
      /2 signaling instances failed: signaling-1 .*signaling-2 .*process gone/,
    );
  });
});

describe('a TLS fleet whose CA this command was not given', () => {
  it('does not call an instance it cannot verify failed: the certificate error and its --ca fix, or a sibling that did fail', async () => {
    const [a, b] = [await tlsHealth(), await tlsHealth()];
    const state = stateWith([
      { name: 'signaling-1', port: a.port, pid: process.pid, scheme: 'wss' },
      { name: 'signaling-2', port: b.port, pid: process.pid, scheme: 'wss' },
    ]);
    const err = await failedSignalingInstance(state, { clock }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'tls_verification_failed', exitCode: 3 });
    expect((err as Error).message).toMatch(/failed certificate verification/);
    expect((err as { hint?: string }).hint).toContain('--ca');
    // One it cannot verify does not hide one whose process is gone.
    const mixed = stateWith([
      { name: 'signaling-1', port: a.port, pid: process.pid, scheme: 'wss' },
      { name: 'signaling-2', port: b.port, pid: gonePid, scheme: 'wss' },
    ]);
    expect(await failedSignalingInstance(mixed, { clock })).toMatchObject({
      name: 'signaling-2',
      why: 'process gone',
    });
    // Trusting the CA, both answer: none failed.
    const trusting = new Agent({ connect: { ca: a.ca } });
    const trustingB = new Agent({ connect: { ca: b.ca } });
    try {
      const one = stateWith([{ name: 'signaling-1', port: a.port, pid: process.pid, scheme: 'wss' }]);
      await expect(failedSignalingInstance(one, { clock, dispatcher: trusting })).rejects.toThrow(
        /none failed/,
      );
      // The restart path leaves a live instance it cannot verify running, saying why: the callers
      // that get there (supervisor, p1) saw it gone, so another restarted it.
      const child = spawn('sleep', ['60'], { stdio: 'ignore' });
      trackPid(child.pid);
      cleanups.push(() => child.kill('SIGKILL'));
      const live = stateWith([{ name: 'signaling-1', port: b.port, pid: child.pid!, scheme: 'wss' }]);
      const ctx = {
        clock: systemClock,
        signal: new AbortController().signal,
        dispatcher: getGlobalDispatcher(),
      };
      const left = await restartRecorded(live, 'signaling-1', { why: 'test' }, ctx);
      expect(left).toMatchObject({ ok: false, pid: child.pid, already_running: false });
      expect(left.detail).toMatch(
        /^already restarted by another \(pid \d+\), but it answers with a certificate .*--ca FILE/,
      );
      expect(isAlive(child.pid!)).toBe(true);
      expect(readProcess(live, 'signaling-1')?.pid).toBe(child.pid);
      // Given the CA, it answers: already running and healthy, left alone.
      const ok = await restartRecorded(
        live,
        'signaling-1',
        { why: 'test' },
        { ...ctx, dispatcher: trustingB },
      );
      expect(ok).toMatchObject({ ok: true, already_running: true });
      expect(isAlive(child.pid!)).toBe(true);
      // A restart asked for (failover --failed, a release's roll) that comes back unverified: it
      // runs, and the result says so instead of 'did not become healthy' at its timeout.
      const asked = stateWith([{ name: 'signaling-1', port: b.port, pid: child.pid!, scheme: 'wss' }]);
      mkdirSync(asked.logs, { recursive: true });
      const rec = readProcess(asked, 'signaling-1')!;
      recordProcess(asked, { ...rec, spec: { ...rec.spec!, command: 'sleep', args: ['60'] } });
      const again = await restartRecorded(asked, 'signaling-1', { why: 'test', evenIfHealthy: true }, ctx);
      const fresh = readProcess(asked, 'signaling-1')!.pid;
      trackPid(fresh);
      cleanups.push(() => isAlive(fresh) && process.kill(fresh, 'SIGKILL'));
      expect(again).toMatchObject({ ok: false, pid: fresh, already_running: false });
      expect(again.detail).toMatch(/^restarted \(pid \d+\), but it answers with a certificate .*--ca FILE/);
      expect(isAlive(fresh)).toBe(true);
    } finally {
      await trusting.close();
      await trustingB.close();
    }
  });
});
