// `failover signaling` without --failed: which recorded instance it calls failed, against real HTTP
// servers answering /health as told. A slow or briefly failing instance is not restarted (a restart
// drops the agents it holds); a gone process, or a live one that never answers, is.
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { failedSignalingInstance } from '../../src/ops/failover/scenarios.js';
import { recordProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/cli.js';

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

function stateWith(instances: { name: string; port: number; pid: number }[]) {
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
      url: `ws://127.0.0.1:${i.port}`,
    });
  return state;
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
