// Corrupted and truncated state files (issue 21 point 9, issue 23 point 2 and 3): every kind — lock,
// incident, release, canary state, process record — is reported by the real CLI as an error naming
// the file and the fix (exit 1), never read as "nothing recorded", and nothing is lost or started.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { withFigure } from '../faults/figures.js';
import { run, spawnCli, tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';

const { dir, cleanup } = tempDir();
const env = {
  STUN_SERVERS: 'stun:127.0.0.1:3478',
  IF_WITNESS_ENDPOINT: 'http://127.0.0.1:9',
  IF_WITNESS_API_KEY: 'k'.repeat(32),
};
const pids: number[] = [];

beforeAll(async () => {
  mkdirSync(path.join(dir, 'config/agents'), { recursive: true });
  await run(['keys', 'generate', '--agent', 'agent-c1', '--out', 'keys'], { cwd: dir });
  writeFileSync(
    path.join(dir, 'config/agents/agent-c1.json'),
    JSON.stringify({ agent_id: 'agent-c1', key: '../../keys/agent-c1.key', loopback: true }),
  );
});
afterAll(() => {
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  cleanup();
});

let n = 0;
function freshState(): string {
  const s = path.join(dir, `state-${++n}`);
  mkdirSync(s, { recursive: true });
  return s;
}

/** Exit 1 with one error line that names `file`, and a fix; no process was started. */
function expectCorrupt(r: { code: number; stderr: string }, file: string, fix: RegExp, state: string) {
  expect(r.code, r.stderr).toBe(1);
  const errLine = r.stderr.split('\n').filter((l) => l.includes(file));
  expect(errLine.length, r.stderr).toBeGreaterThan(0);
  expect(errLine[0]).toContain('is corrupted');
  expect(r.stderr).toMatch(fix);
  expect(r.stderr).not.toMatch(/no incident|nothing recorded|no processes recorded|keeps changing hands/);
  expect(listProcesses(openStateDir(state)).filter((p) => p.owner !== 'test')).toEqual([]);
}

/** One corruption scenario, recorded as a row of `npm run faults`' table. */
const corrupt = (fault: string, body: () => Promise<void>) =>
  withFigure(
    {
      fault: `corrupted state file: ${fault}`,
      trials: 1,
      expected: 'exit 1, an error naming the file and the fix; file kept; nothing started or stopped',
    },
    async () => {
      await body();
      return { observed: 'as expected', figure: 'named' };
    },
  );

describe('corrupted state files', () => {
  it.each([
    ['an empty', ''],
    ['a truncated', '{"pid":12,"purpose":"dep'],
  ])(
    '%s lock file fails deploy at once naming the file and `rm <file>`, and is left as it was',
    (kind, content) =>
      corrupt(`${kind.split(' ')[1]} deploy lock`, async () => {
        const state = freshState();
        const lock = openStateDir(state).lock('deploy');
        writeFileSync(lock, content);
        const r = await spawnCli(['deploy', '--base-port', '18700', '--state-dir', state], { cwd: dir, env });
        expectCorrupt(r, lock, new RegExp(`rm ${lock.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), state);
        expect(readFileSync(lock, 'utf8')).toBe(content);
        expect(existsSync(path.join(state, 'run'))).toBe(false);
        // status names it too (it was silent), and says how to clear it.
        const st = await spawnCli(['status', '--state-dir', state], {
          cwd: dir,
          env: { ...env, NO_COLOR: '1' },
        });
        expect(st.stdout).toContain(`✗ ${lock} no longer parses`);
        expect(st.stdout).toContain(`rm ${lock}`);
        expect(readFileSync(lock, 'utf8')).toBe(content);
      }),
  );

  it('a truncated open incident: deploy and incident resolve both name the record, not "no incident"', () =>
    corrupt('truncated open incident', async () => {
      const state = freshState();
      const id = 'INC-20261204-120000';
      const p = openStateDir(state);
      mkdirSync(p.incidents, { recursive: true });
      const truncated = `{"id":"${id}","kind":"p1","title":"signaling do`;
      writeFileSync(p.incidentFile(id), truncated);
      // The open incident still holds deploys, as `incident declare` left it.
      writeFileSync(
        p.lock('deploy'),
        JSON.stringify({
          pid: 1,
          purpose: `incident ${id}`,
          since: new Date().toISOString(),
          token: 'incident-token',
          persistent: true,
          release_hint: `resolve the incident first: ifmesh incident resolve ${id}`,
        }),
      );
      const fix = /restore it from a backup; if that incident is over, remove it with `rm .*\.json`/;
      const deploy = await spawnCli(['deploy', '--base-port', '18700', '--state-dir', state], {
        cwd: dir,
        env,
      });
      expectCorrupt(deploy, p.incidentFile(id), fix, state);
      for (const argv of [
        ['incident', 'resolve', id],
        ['incident', 'show', id],
        ['incident', 'list'],
      ]) {
        const r = await spawnCli([...argv, '--state-dir', state], { cwd: dir, env });
        expectCorrupt(r, p.incidentFile(id), fix, state);
        // The record it was asked for is named once, not also by the escalation schedule it runs.
        if (argv[1] === 'show')
          expect(r.stderr.split('\n').filter((l) => l.includes('is corrupted'))).toHaveLength(1);
      }
      // status names it too, and its hold's hint is the record's fix, not `incident resolve`,
      // which cannot read it.
      const st = await spawnCli(['status', '--state-dir', state], {
        cwd: dir,
        env: { ...env, NO_COLOR: '1' },
      });
      expect(st.code).toBe(1);
      expect(st.stdout).toContain(
        `✗ ${p.incidentFile(id)} is corrupted (not the JSON ifmesh wrote): restore it`,
      );
      expect(st.stdout).toContain(`(its record ${p.incidentFile(id)} no longer parses: restore it`);
      expect(readFileSync(p.incidentFile(id), 'utf8')).toBe(truncated);
      expect(JSON.parse(readFileSync(p.lock('deploy'), 'utf8')).token).toBe('incident-token');
    }));

  it('a truncated current release: releases and rollback name it', () =>
    corrupt('truncated release record', async () => {
      const state = freshState();
      const p = openStateDir(state);
      mkdirSync(p.releases, { recursive: true });
      const id = '2026-12-04T12-00-00Z-abc';
      writeFileSync(p.releaseFile(id), '{"id":"2026-12-04T12-00-00Z-abc","ref":"ma');
      writeFileSync(p.currentRelease, `${id}\n`);
      const fix = /restore it from a backup or delete it/;
      for (const argv of [['releases'], ['rollback']]) {
        const r = await spawnCli([...argv, '--state-dir', state], { cwd: dir, env });
        expectCorrupt(r, p.releaseFile(id), fix, state);
      }
    }));

  it.each([
    ['empty', ''],
    ['naming no record', 'rel-gon'],
  ])(
    'a releases/current file %s: rollback names it, releases lists what there is and names it',
    (kind, content) =>
      corrupt(`releases/current ${kind}`, async () => {
        const state = freshState();
        const p = openStateDir(state);
        mkdirSync(p.releases, { recursive: true });
        writeFileSync(p.currentRelease, content);
        const why = content
          ? `it names release "${content}", which has no record`
          : 'it is empty: it should hold a release id';
        const fix = /write the id of a release `ifmesh releases` lists into it/;
        const rb = await spawnCli(['rollback', '--state-dir', state], { cwd: dir, env });
        expectCorrupt(rb, p.currentRelease, fix, state);
        // It holds an id, not JSON: the error says what is wrong with it.
        expect(rb.stderr).toContain(`${p.currentRelease} is corrupted (${why})`);
        // `releases`, which the fix points to, still lists what there is, then names the file (exit 1).
        const rl = await spawnCli(['releases', '--state-dir', state], {
          cwd: dir,
          env: { ...env, NO_COLOR: '1' },
        });
        expect(rl.code, rl.stderr).toBe(1);
        expect(rl.stdout).toContain(`✗ ${p.currentRelease} is corrupted (${why}): `);
        expect(rl.stdout).toContain('no releases recorded');
        const js = await spawnCli(['releases', '--json', '--state-dir', state], { cwd: dir, env });
        expect(JSON.parse(js.stdout)).toMatchObject({
          current: null,
          current_error: { file: p.currentRelease, fix: expect.stringMatching(fix) },
        });
        const st = await spawnCli(['status', '--json', '--state-dir', state], { cwd: dir, env });
        expect(st.code).toBe(1);
        expect(JSON.parse(st.stdout).unreadable_files).toEqual([
          expect.objectContaining({ file: p.currentRelease, fix: expect.stringMatching(fix) }),
        ]);
        expect(readFileSync(p.currentRelease, 'utf8')).toBe(content);
      }),
  );

  it('a truncated canary state: canary status and abort name it', () =>
    corrupt('truncated canary state', async () => {
      const state = freshState();
      const p = openStateDir(state);
      writeFileSync(p.canary, '{"plan":{"canary_id":"c1","stage":"sta');
      const fix = /restore the release with `ifmesh rollback`, then delete the file/;
      for (const argv of [
        ['canary', 'status'],
        ['canary', 'abort'],
      ]) {
        const r = await spawnCli([...argv, '--state-dir', state], { cwd: dir, env });
        expectCorrupt(r, p.canary, fix, state);
      }
    }));

  it('a truncated procedure journal: status and deploy name it; the deploy lock is released', () =>
    corrupt('truncated procedure journal', async () => {
      const state = freshState();
      const p = openStateDir(state);
      mkdirSync(p.procedures, { recursive: true });
      const truncated = '{"procedure":"deploy","run_id":"ab12","pid":12,"step":"agents_st';
      writeFileSync(p.procedureFile('deploy'), truncated);
      const fix = /delete it: it only records the last run/;
      for (const argv of [['status'], ['deploy', '--base-port', '18700']]) {
        const r = await spawnCli([...argv, '--state-dir', state], { cwd: dir, env });
        expectCorrupt(r, p.procedureFile('deploy'), fix, state);
      }
      expect(readFileSync(p.procedureFile('deploy'), 'utf8')).toBe(truncated);
      expect(existsSync(p.lock('deploy'))).toBe(false);
    }));

  it('a truncated process record: down refuses naming it; views show the rest of the fleet and name it', () =>
    corrupt('truncated process record', async () => {
      const state = freshState();
      const p = openStateDir(state);
      const sleeper = () => {
        const child = spawn('sleep', ['120'], { stdio: 'ignore', detached: true });
        child.unref();
        pids.push(child.pid!);
        trackPid(child.pid!);
        return child.pid!;
      };
      const torn = sleeper();
      const whole = sleeper();
      mkdirSync(p.run, { recursive: true });
      writeFileSync(
        p.processFile('signaling-1'),
        `{"name":"signaling-1","role":"signaling","pid":${torn},"started_at":"2026-12`,
      );
      // A record that reads, of a live process (coturn without a port: alive is healthy).
      writeFileSync(
        p.processFile('coturn-1'),
        JSON.stringify({
          name: 'coturn-1',
          role: 'coturn',
          pid: whole,
          started_at: new Date().toISOString(),
          owner: 'test',
        }),
      );
      const file = p.processFile('signaling-1');
      // The torn text still holds the pid: the fix names it.
      const fix = new RegExp(
        `it was pid ${torn}: if \`ps -p ${torn} -o cmd=\` shows signaling-1's process, stop it by hand \\(kill ${torn};`,
      );
      const cli = (argv: string[]) =>
        spawnCli([...argv, '--state-dir', state], { cwd: dir, env: { ...env, NO_COLOR: '1' } });

      // What stops or replaces processes refuses before touching any: it cannot stop what it cannot
      // read (a canary had stopped one agent before it found out, and left it down).
      for (const argv of [
        ['down'],
        ['canary', '--set', 'AGENT_RECONNECT_MAX_MS=9000'],
        ['deploy', '--base-port', '18700'],
      ]) {
        const r = await cli(argv);
        expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(1);
        expect(r.stderr).toContain(`${file} is corrupted`);
        expect(r.stderr).toMatch(fix);
      }

      // status shows the rest, and the torn record with its fix; the fleet is not healthy.
      const st = await cli(['status']);
      expect(st.code, st.stderr).toBe(1);
      expect(st.stdout).toMatch(/✓ coturn-1 +pid \d+/);
      expect(st.stdout).toContain(`✗ ${file} no longer parses: process signaling-1 is not shown below`);
      // Said once: not again as a warning on stderr.
      expect(st.stderr).not.toContain(file);
      const js = await cli(['status', '--json']);
      expect(JSON.parse(js.stdout).unreadable_records).toEqual([
        expect.objectContaining({ name: 'signaling-1', file, fix: expect.stringMatching(fix) }),
      ]);

      // The read-only procedures run, and say what they left out (on stderr).
      for (const argv of [['incident', 'p1', '--dry-run'], ['incident', 'list'], ['releases']]) {
        const r = await cli(argv);
        expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(0);
        if (argv[0] === 'incident')
          expect(r.stderr).toContain(
            `warning: ${file} is corrupted (not the JSON ifmesh wrote): process signaling-1 is left out`,
          );
      }
      // Failover has no readable instance to pick, and says which record may be it.
      const fo = await cli(['failover', 'signaling', '--dry-run']);
      expect(fo.code, fo.stderr).toBe(2);
      expect(fo.stderr).toContain(`(${file} no longer parses: fix or delete first)`);

      // Every record torn: not "nothing runs" (exit 3), since their processes may.
      const onlyTorn = freshState();
      mkdirSync(path.join(onlyTorn, 'run'), { recursive: true });
      writeFileSync(path.join(onlyTorn, 'run', 'signaling-1.json'), readFileSync(file, 'utf8'));
      const all = await spawnCli(['status', '--state-dir', onlyTorn], {
        cwd: dir,
        env: { ...env, NO_COLOR: '1' },
      });
      expect(all.code, all.stderr).toBe(1);
      expect(all.stdout).toContain('nothing whose record reads is running');

      expect(isAlive(torn)).toBe(true);
      expect(isAlive(whole)).toBe(true);
      expect(readFileSync(file, 'utf8')).toContain('"pid"');
    }));
});
