// The state directory on a full filesystem, then on a read-only one: real tmpfs mounts the test
// makes (root, as CI runs). Every command that writes state fails with exit 1 and an error naming
// what it could not write and the fix, leaves no temp file behind, and starts nothing; `up` and
// `deploy` refuse before starting anything when the filesystem has under 64 MiB free.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, spawnCli, tempDir } from '../helpers/cli.js';
import { outOf, recordFigure } from './figures.js';

const { dir, cleanup } = tempDir();
const mounts: string[] = [];

function mountTmpfs(name: string, size: string): string {
  if (process.getuid?.() !== 0)
    throw new Error('this test mounts a tmpfs: run it as root (CI does; sudo npm test elsewhere)');
  const at = path.join(dir, name);
  mkdirSync(at);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', at]);
  mounts.push(at);
  return at;
}

beforeAll(async () => {
  mkdirSync(path.join(dir, 'config/agents'), { recursive: true });
  await run(['keys', 'generate', '--agent', 'agent-d1', '--out', 'keys'], { cwd: dir });
  writeFileSync(
    path.join(dir, 'config/agents/agent-d1.json'),
    JSON.stringify({ agent_id: 'agent-d1', key: '../../keys/agent-d1.key', loopback: true }),
  );
});
afterAll(() => {
  for (const m of mounts.reverse()) execFileSync('umount', ['-l', m]);
  cleanup();
});

/** Every file under `root`, relative. */
function files(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

/** Processes whose command line names `state`: what a command started and left behind. */
function runningWith(state: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .flatMap((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ');
        return cmd.includes(state) ? [cmd] : [];
      } catch {
        return [];
      }
    });
}

const COMMANDS = [
  ['up', '--agents', '2'],
  ['deploy', '--agents-dir', 'config/agents', '--base-port', '18800'],
  ['maintenance', 'daily'],
  ['incident', 'p2', '--no-notify'],
];

async function attempt(state: string, expectText: RegExp) {
  const outcomes: { argv: string; ok: boolean; line: string }[] = [];
  for (const argv of COMMANDS) {
    const r = await spawnCli([...argv, '--state-dir', state], {
      cwd: dir,
      env: { SIGNALING_HOST: '127.0.0.1', SIGNALING_ADMIN_TOKEN: 'disk-test-token' },
      timeoutMs: 60_000,
    });
    const line = r.stderr.split('\n').find((l) => l.startsWith('error:')) ?? r.stderr.slice(0, 200);
    const hint = r.stderr.split('\n').find((l) => l.startsWith('hint:')) ?? '';
    const ok = r.code === 1 && line.includes(state) && expectText.test(line) && hint.length > 0;
    outcomes.push({ argv: argv.join(' '), ok, line: `${r.code} ${line} ${hint}` });
  }
  return outcomes;
}

describe('state directory on a full or read-only filesystem', () => {
  it('full: every command names what it could not write (or the free space it lacks), leaves nothing behind', async () => {
    const fs = mountTmpfs('full', '256k');
    const state = path.join(fs, 'state');
    mkdirSync(state);
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(fs, 'fill')}`, 'bs=4k'], { stdio: 'ignore' });
    } catch {
      // dd stops with "No space left on device": the filesystem is full, as wanted
    }
    const outcomes = await attempt(state, /no space left|MiB free/);
    const left = files(state);
    const running = runningWith(state);
    const good = outcomes.filter((o) => o.ok).length;
    recordFigure({
      fault: 'state dir on a full filesystem',
      trials: COMMANDS.length,
      expected: 'exit 1 naming the file and the fix; no temp file; nothing started',
      observed: `${outOf(good, COMMANDS.length)} as expected; ${left.length} files left; ${running.length} processes`,
      figure: `${left.length} leftovers`,
      ok: good === COMMANDS.length && left.length === 0 && running.length === 0,
    });
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(left).toEqual([]);
    expect(running).toEqual([]);
  }, 240_000);

  it('read-only: every command names the file and says the filesystem is read-only', async () => {
    // Large enough that up and deploy pass their free-space check and meet the read-only mount itself.
    const fs = mountTmpfs('ro', '128m');
    const state = path.join(fs, 'state');
    mkdirSync(state);
    execFileSync('mount', ['-o', 'remount,ro', fs]);
    const outcomes = await attempt(state, /read-only/);
    const running = runningWith(state);
    const good = outcomes.filter((o) => o.ok).length;
    recordFigure({
      fault: 'state dir on a read-only filesystem',
      trials: COMMANDS.length,
      expected: 'exit 1 naming the file, "read-only" and the fix; nothing started',
      observed: `${outOf(good, COMMANDS.length)} as expected; ${running.length} processes`,
      figure: `${good} of ${COMMANDS.length}`,
      ok: good === COMMANDS.length && running.length === 0,
    });
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(running).toEqual([]);
    expect(files(state)).toEqual([]);
  }, 240_000);
});
