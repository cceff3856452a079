import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCli, tempDir } from '../helpers/cli.js';

const made: Array<() => void> = [];
afterAll(() => {
  for (const cleanup of made) cleanup();
});

function freshDir(): string {
  const { dir, cleanup } = tempDir();
  made.push(cleanup);
  return dir;
}

/** Every file under `dir` with its content and permission bits. */
function snapshot(dir: string): Record<string, { text: string; mode: number }> {
  const out: Record<string, { text: string; mode: number }> = {};
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const full = path.join(dir, rel);
    const st = statSync(full);
    if (st.isFile()) out[rel] = { text: readFileSync(full, 'utf8'), mode: st.mode & 0o777 };
  }
  return out;
}

const ENV = 'config/webrtc-production.env';
const modeOf = (file: string) => statSync(file).mode & 0o777;

describe('ifmesh init', () => {
  const dir = freshDir();

  it('writes the env file and N agents with their keys, modes 0600 for secrets', async () => {
    const r = await spawnCli(['init', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.dry_run).toBe(false);
    expect(report.next).toEqual(['ifmesh preflight', 'ifmesh deploy --agents-dir config/agents']);
    const rel = report.files.map((f: { path: string }) => path.relative(dir, f.path)).sort();
    expect(rel).toEqual(
      [
        ENV,
        ...[1, 2, 3].flatMap((n) => [
          `config/agents/agent-${n}.json`,
          `config/keys/agent-${n}.key`,
          `config/keys/agent-${n}.pub`,
        ]),
      ].sort(),
    );
    for (const f of report.files as Array<{ path: string; kind: string; mode: string }>) {
      expect(modeOf(f.path).toString(8).padStart(4, '0'), f.path).toBe(f.mode);
      expect(f.mode).toBe(f.kind === 'config' || f.kind === 'key' ? '0600' : '0644');
    }
    expect(modeOf(path.join(dir, ENV))).toBe(0o600);
    expect(modeOf(path.join(dir, 'config/keys/agent-1.key'))).toBe(0o600);
    expect(JSON.parse(readFileSync(path.join(dir, 'config/agents/agent-2.json'), 'utf8'))).toEqual({
      agent_id: 'agent-2',
      key: '../keys/agent-2.key',
    });
    // Every schema key, commented, with random secrets and no secret echoed on stdout.
    const env = readFileSync(path.join(dir, ENV), 'utf8');
    for (const key of ['SIGNALING_PORT', 'TURN_SERVERS', 'PRODUCTION_MODE', 'SMTP_URL'])
      expect(env).toMatch(new RegExp(`^${key}=`, 'm'));
    expect(env).toContain('# signaling port (HTTP and WebSocket)\n# default: 8443\nSIGNALING_PORT=8443');
    for (const key of ['IF_WITNESS_API_KEY', 'SIGNALING_ADMIN_TOKEN', 'TURN_PASSWORD']) {
      const value = new RegExp(`^${key}=(.*)$`, 'm').exec(env)?.[1] ?? '';
      expect(value, key).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(r.stdout).not.toContain(value);
    }
    expect(r.stderr).toBe('');
  });

  it('writes an env file that `config check` accepts', async () => {
    const r = await spawnCli(['config', 'check', '--config', path.join(dir, ENV), '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).valid).toBe(true);
    expect(r.stderr).toBe('');
  });

  it('writes agent configs that `deploy --dry-run` validates', async () => {
    const state = path.join(dir, 'state');
    const r = await spawnCli(
      [
        'deploy',
        '--agents-dir',
        path.join(dir, 'config/agents'),
        '--dry-run',
        '--json',
        '--state-dir',
        state,
      ],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout).plan;
    expect(plan.agents.map((a: { agent_id: string }) => a.agent_id)).toEqual([
      'agent-1',
      'agent-2',
      'agent-3',
    ]);
    expect(existsSync(state)).toBe(false);
  });

  it('refuses to overwrite with exit 2 and changes nothing', async () => {
    const before = snapshot(dir);
    const r = await spawnCli(['init'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${ENV} already exists`);
    expect(r.stderr).toContain('pass --force to overwrite');
    expect(snapshot(dir)).toEqual(before);

    const j = await spawnCli(['init', '--json'], { cwd: dir });
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout).error.code).toBe('file_exists');
    expect(snapshot(dir)).toEqual(before);
  });

  it('overwrites everything with --force', async () => {
    const before = snapshot(dir);
    const r = await spawnCli(['init', '--force'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ifmesh deploy --agents-dir config/agents');
    const after = snapshot(dir);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    for (const file of [ENV, 'config/keys/agent-1.key', 'config/keys/agent-3.pub'])
      expect(after[file]!.text, file).not.toBe(before[file]!.text);
    expect(after[ENV]!.mode).toBe(0o600);
    expect(after['config/keys/agent-2.key']!.mode).toBe(0o600);
    const check = await spawnCli(['config', 'check'], { cwd: dir });
    expect(check.code).toBe(0);
  });

  it('checks every target before writing: one existing file means nothing is written', async () => {
    const other = freshDir();
    mkdirSync(path.join(other, 'config/keys'), { recursive: true });
    writeFileSync(path.join(other, 'config/keys/agent-2.pub'), 'mine\n');
    const r = await spawnCli(['init'], { cwd: other });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('config/keys/agent-2.pub already exists; pass --force to overwrite');
    expect(Object.keys(snapshot(other))).toEqual(['config/keys/agent-2.pub']);
  });

  it('prints what it would write with --dry-run and writes nothing', async () => {
    const other = freshDir();
    const r = await spawnCli(['init', '--dry-run', '--agents', '2', '--dir', 'mesh', '--json'], {
      cwd: other,
    });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.dry_run).toBe(true);
    expect(report.files).toHaveLength(7);
    expect(report.files[0]).toEqual({ path: path.join(other, 'mesh', ENV), kind: 'config', mode: '0600' });
    expect(report.next).toEqual(['cd mesh', 'ifmesh preflight', 'ifmesh deploy --agents-dir config/agents']);
    expect(readdirSync(other)).toEqual([]);

    const human = await spawnCli(['init', '--dry-run'], { cwd: other });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('dry run: nothing written');
    expect(human.stdout).toContain(ENV);
    expect(readdirSync(other)).toEqual([]);

    // Another env file path, through the real binary as an operator runs it (Node itself would take
    // an --env-file flag, even after the script's name, and exit 9).
    const elsewhere = await spawnCli(['init', '--dry-run', '--env-path', 'etc/prod.env', '--json'], {
      cwd: other,
    });
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    expect(JSON.parse(elsewhere.stdout).files[0]).toMatchObject({
      path: path.join(other, 'etc/prod.env'),
      kind: 'config',
    });
  });
});
