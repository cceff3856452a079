import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/state/lock.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { ROOT, tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function stateDir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const r = spawnSync('true');
  return r.pid;
}

// A separate process racing for the lock: says "ready", waits for "go", tries, reports, and holds a
// won lock until its stdin closes.
const RACER = `
import { acquireLock } from ${JSON.stringify(path.join(ROOT, 'dist/src/state/lock.js'))};
import { openStateDir } from ${JSON.stringify(path.join(ROOT, 'dist/src/state/state-dir.js'))};
import { createInterface } from 'node:readline';
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
process.stdout.write('ready\\n');
await lines.next();
try {
  const lock = await acquireLock(openStateDir(process.argv[1]), 'deploy', 'racer ' + process.pid);
  process.stdout.write(JSON.stringify({ won: true, pid: process.pid }) + '\\n');
  await lines.next();
  await lock.release();
} catch (err) {
  process.stdout.write(JSON.stringify({ won: false, pid: process.pid, message: err.message }) + '\\n');
}
process.exit(0);
`;

interface Racer {
  child: ChildProcess;
  next(): Promise<string>;
}

function racer(dir: string): Racer {
  const child = spawn(process.execPath, ['--input-type=module', '-e', RACER, dir], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  trackPid(child.pid);
  cleanups.push(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    child,
    next: async () => {
      const r = await lines.next();
      if (r.done) throw new Error(`racer ${child.pid} ended without a line`);
      return r.value;
    },
  };
}

describe('the state directory lock', () => {
  it('is refused while a live process holds it, naming the holder; release leaves others’ locks alone', async () => {
    const dir = stateDir();
    const lock = await acquireLock(openStateDir(dir), 'deploy', 'deploy first');
    await expect(acquireLock(openStateDir(dir), 'deploy', 'deploy second')).rejects.toThrow(
      `the deploy lock is held by pid ${process.pid} (deploy first, since ${lock.holder.since})`,
    );
    // other names are other locks (incidents, maintenance)
    const other = await acquireLock(openStateDir(dir), 'maintenance', 'window');
    await other.release();
    await lock.release();
    expect(existsSync(openStateDir(dir).lock('deploy'))).toBe(false);
    const again = await acquireLock(openStateDir(dir), 'deploy', 'deploy third');
    await lock.release(); // a stale release from an earlier holder must not free the new one
    await expect(acquireLock(openStateDir(dir), 'deploy', 'x')).rejects.toThrow('(deploy third');
    await again.release();
  });

  it('takes over a dead holder’s lock when only one process wants it', async () => {
    const dir = stateDir();
    const dead = deadPid();
    writeFileSync(
      openStateDir(dir).lock('deploy'),
      JSON.stringify({
        pid: dead,
        purpose: 'deploy crashed',
        since: '2026-01-01T00:00:00.000Z',
        token: 't0',
      }),
    );
    const lock = await acquireLock(openStateDir(dir), 'deploy', 'deploy after crash');
    expect(lock.holder.pid).toBe(process.pid);
    await lock.release();
    // no claim or candidate files are left behind
    expect(readdirSync(dir)).toEqual([]);
  });

  it('an empty or truncated lock is never taken over: concurrent takers all fail naming the file and `rm`', async () => {
    const dir = stateDir();
    const file = openStateDir(dir).lock('deploy');
    for (const content of ['', '{"pid":1,"purpose":"depl']) {
      writeFileSync(file, content);
      const tries = await Promise.allSettled(
        [1, 2, 3].map((i) => acquireLock(openStateDir(dir), 'deploy', `taker ${i}`)),
      );
      for (const t of tries) {
        expect(t.status).toBe('rejected');
        const err = (t as PromiseRejectedResult).reason as { code: string; message: string; hint: string };
        expect(err.code).toBe('state_corrupt');
        expect(err.message).toBe(`${file} is corrupted (not the JSON ifmesh wrote)`);
        expect(err.hint).toContain(`rm ${file}`);
      }
      expect(readdirSync(dir).sort()).toEqual(['deploy.lock']);
    }
  });

  it('two processes racing for a stale lock: exactly one wins, the loser names the winner', async () => {
    for (let round = 0; round < 5; round++) {
      const dir = stateDir();
      writeFileSync(
        openStateDir(dir).lock('deploy'),
        JSON.stringify({
          pid: deadPid(),
          purpose: 'deploy crashed',
          since: '2026-01-01T00:00:00.000Z',
          token: `t${round}`,
        }),
      );
      const racers = [racer(dir), racer(dir)];
      for (const r of racers) expect(await r.next()).toBe('ready');
      for (const r of racers) r.child.stdin!.write('go\n');
      const results = (await Promise.all(racers.map((r) => r.next()))).map(
        (l) => JSON.parse(l) as { won: boolean; pid: number; message?: string },
      );
      const winners = results.filter((r) => r.won);
      expect(winners, JSON.stringify(results)).toHaveLength(1);
      const loser = results.find((r) => !r.won)!;
      expect(loser.message).toContain(
        `the deploy lock is held by pid ${winners[0]!.pid} (racer ${winners[0]!.pid}`,
      );
      for (const r of racers) r.child.stdin!.end();
      await Promise.all(racers.map((r) => new Promise((res) => r.child.once('exit', res))));
      expect(readdirSync(dir)).toEqual([]);
    }
  });
});
