// The spool's disk fails under the client: writes to the spool directory fail (it is replaced by a
// plain file, so every open under it is ENOTDIR) while the witness is down and a batch is in flight.
// Nothing accepted is lost: events wait in memory, bounded by maxQueue (beyond it they are refused
// and counted), the batch that was in flight among them; once the disk and the witness are back,
// everything accepted is stored exactly once, in order. With the witness up, delivery goes on from
// memory while the disk is down. And the spool's stale-lock takeover lets exactly one of many
// processes in, however they race.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { WitnessClient } from '../../src/clients/witness.js';
import { ROOT, tempDir } from '../helpers/cli.js';
import { until } from '../helpers/cluster.js';
import { freePort, type Service, startWitnessProcess } from '../helpers/processes.js';
import { API_KEY, post } from '../helpers/witness.js';
import { recordFigure } from './figures.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

/** Replaces `spoolDir` by a plain file (every write under it fails), or puts it back. */
function breakDisk(spoolDir: string): void {
  renameSync(spoolDir, `${spoolDir}.away`);
  writeFileSync(spoolDir, 'not a directory');
}
function mendDisk(spoolDir: string): void {
  rmSync(spoolDir);
  renameSync(`${spoolDir}.away`, spoolDir);
}

async function stored(url: string, event: string): Promise<number[]> {
  const r = await post(`${url}/api/query`, { query: { event }, limit: 10_000 });
  return (r.json.results as { metadata: { n: number } }[]).map((e) => e.metadata.n);
}

describe('witness client when the spool disk fails', () => {
  it('keeps accepted events in memory (bounded), loses none in flight, and delivers them all once the disk and the witness are back', async () => {
    const db = path.join(dir, 'a', 'witness.db');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const start = () => startWitnessProcess(db, ['--port', String(port)]);
    let svc: Service = await start();
    const spoolDir = path.join(dir, 'a', 'spool');
    const errors: string[] = [];
    const c = new WitnessClient({
      url,
      apiKey: API_KEY,
      producer: 'disk-probe',
      spoolDir,
      maxQueue: 400,
      batchSize: 100,
      retryMinMs: 20,
      retryMaxMs: 200,
      timeoutMs: 2_000,
      onError: (e) => errors.push(e.message),
    });
    let n = 0;
    const logSome = (k: number) => {
      for (let i = 0; i < k; i++) c.log({ event: 'disk_probe', metadata: { n: n++ } });
    };
    logSome(50);
    expect(await c.flush(10_000)).toBe(true);

    // The witness goes away, then the disk: the next batch fails to send, and fails to spool.
    svc.kill('SIGKILL');
    await svc.exited;
    breakDisk(spoolDir);
    logSome(100);
    await until('a failed spool write', () => c.spoolStats.disk_errors > 0);
    expect(errors.some((e) => e.includes('events wait in memory'))).toBe(true);
    // Memory is bounded: past maxQueue (plus the batch in flight), log() refuses and counts.
    logSome(1_000);
    expect(c.spoolStats.dropped).toBeGreaterThan(0);
    const accepted = n - c.spoolStats.dropped;
    expect(accepted).toBeLessThanOrEqual(50 + 400 + 100);
    expect(errors.some((e) => e.includes('dropped so far'))).toBe(true);

    // The disk recovers first: memory drains to the spool; then the witness comes back.
    mendDisk(spoolDir);
    await until('the spool to work again', () => errors.some((e) => e.includes('works again')));
    svc = await start();
    expect(await c.flush(30_000)).toBe(true);
    await c.close();
    expect(existsSync(path.join(spoolDir, 'disk-probe.ndjson'))).toBe(false);

    // Everything accepted, once, in order: the 50 first, then the ones logged while both were down
    // up to where memory was full (the refused ones are the last, never a hole in the middle).
    const got = await stored(url, 'disk_probe');
    const want = Array.from({ length: accepted }, (_, i) => i);
    const missing = want.filter((i) => !got.includes(i)).length;
    recordFigure({
      fault: 'witness down, then the spool disk fails (client)',
      trials: 1,
      expected: 'accepted events all delivered once, in order; memory bounded (refusals counted)',
      observed: `${accepted - missing} of ${accepted} accepted delivered, ${got.length - new Set(got).size} duplicates, ${c.spoolStats.dropped} refused at the memory bound`,
      figure: `${missing} lost`,
      ok: JSON.stringify(got) === JSON.stringify(want),
    });
    expect(got).toEqual(want);
    await svc.stop();
  }, 60_000);

  it('goes on delivering from memory while the disk is down and the witness is up', async () => {
    const w = await startWitnessProcess(path.join(dir, 'b', 'witness.db'));
    const spoolDir = path.join(dir, 'b', 'spool');
    mkdirSync(spoolDir, { recursive: true });
    // Broken before the client starts: it cannot even open (lock) its spool.
    breakDisk(spoolDir);
    const errors: string[] = [];
    const c = new WitnessClient({
      url: w.url,
      apiKey: API_KEY,
      producer: 'up-probe',
      spoolDir,
      retryMinMs: 20,
      onError: (e) => errors.push(e.message),
    });
    try {
      for (let i = 0; i < 200; i++) c.log({ event: 'up_probe', metadata: { n: i } });
      expect(await c.flush(10_000)).toBe(true);
      expect(c.spoolStats.disk_errors).toBeGreaterThan(0);
      expect(errors[0]).toContain('events wait in memory');
      expect(await stored(w.url, 'up_probe')).toEqual(Array.from({ length: 200 }, (_, i) => i));
      mendDisk(spoolDir);
      await c.close();
    } finally {
      await w.stop();
    }
  }, 30_000);
});

describe('spool lock', () => {
  it('lets exactly one of eight processes take over a stale lock at once', async () => {
    const spoolDir = path.join(dir, 'lock');
    // A lock left by a process that is gone (its pid exited), in the format of an older ifmesh.
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.once('exit', r));
    mkdirSync(spoolDir, { recursive: true });
    writeFileSync(path.join(spoolDir, 'shared.lock'), String(gone.pid));
    // Each child tries once, says what happened, and holds on until its stdin closes, so no later
    // taker can find a dead holder: whoever got in must be alone.
    const script = `
      const { Spool } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/clients/spool.js'))});
      const s = new Spool(${JSON.stringify(spoolDir)}, 'shared');
      try { await s.open(); console.log('locked'); }
      catch (e) { console.log(e.constructor.name); }
      process.stdin.resume();
      process.stdin.on('end', async () => { await s.close(); process.exit(0); });
    `;
    const children: ChildProcess[] = Array.from({ length: 8 }, () =>
      spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    try {
      const said = await Promise.all(
        children.map(
          (ch) =>
            new Promise<string>((resolve) =>
              createInterface({ input: ch.stdout! }).once('line', (l) => resolve(l.trim())),
            ),
        ),
      );
      expect(said.filter((s) => s === 'locked')).toHaveLength(1);
      expect(said.filter((s) => s !== 'locked')).toEqual(Array(7).fill('SpoolLockedError'));
    } finally {
      await Promise.all(
        children.map(async (ch) => {
          const exited = new Promise((r) => ch.once('exit', r));
          ch.stdin!.end();
          await exited;
        }),
      );
    }
    // The holder released it on its way out; no claim or temp file is left behind.
    expect(readdirSync(spoolDir)).toEqual([]);
  }, 30_000);
});
