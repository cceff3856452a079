import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/registry.js';
import { BIN, ROOT, run, spawnCli, tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir());
});
afterAll(() => cleanup());

describe('ifmesh binary', () => {
  it('lists every registered command with its summary in --help, and exits 0', async () => {
    const r = await spawnCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of commands) expect(r.stdout).toMatch(new RegExp(`^  ${c.name}\\b`, 'm'));
    expect(r.stdout).toContain('Exit codes: 0 ok, 1 check failed');
  });

  it('is what `npx ifmesh` runs in a clone after npm ci', async () => {
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync('npx', ['--no-install', 'ifmesh', '--version'], {
      cwd: ROOT,
      timeout: 20_000,
    }).toString();
    expect(out.trim()).toBe(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const r = await spawnCli(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it('shows examples in each command help', async () => {
    const r = await spawnCli(['keys', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('$ ifmesh keys generate --agent agent-1');
  });

  it('exits 2 on a group without its command (a cron line that lost `daily`), after its help', async () => {
    const r = await spawnCli(['maintenance']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: ifmesh maintenance [options] [command]');
    expect(r.stderr).toContain('daily');
    expect(r.stderr).toContain('error: ifmesh maintenance needs a command');
    // Behind a global option too.
    const ca = await spawnCli(['--ca', '/etc/hosts', 'maintenance']);
    expect(ca.code).toBe(2);
    expect(ca.stderr).toContain('error: ifmesh maintenance needs a command');
    // Asking for the help is not an error; bare `ifmesh` shows it too; help for no command is.
    expect((await spawnCli(['maintenance', '--help'])).code).toBe(0);
    expect((await spawnCli(['help', 'maintenance'])).code).toBe(0);
    expect((await spawnCli([])).code).toBe(0);
    const nosuch = await spawnCli(['help', 'nosuch']);
    expect(nosuch.code).toBe(2);
    expect(nosuch.stderr).toContain('error: no command nosuch');
  });

  it('exits 2 on an unknown command, with a suggestion, and on an unknown option', async () => {
    const a = await spawnCli(['confg']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("unknown command 'confg'");
    expect(a.stderr).toContain('Did you mean config?');
    const b = await spawnCli(['config', 'check', '--nope']);
    expect(b.code).toBe(2);
  });

  it('with --json, a usage error is still exactly one JSON document on stdout', async () => {
    const r = await spawnCli(['config', 'check', '--json', '--nope']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 'usage', message: "unknown option '--nope'" } });
  });

  it('refuses a --state-dir or IFMESH_STATE_DIR that does not exist, creating nothing, where the command does not make one', async () => {
    const missing = path.join(dir, 'no-such-fleet');
    for (const argv of [
      ['verify', '--state-dir', missing],
      ['incident', 'p1', '--no-notify', '--state-dir', missing],
      ['status', '--state-dir', missing],
      ['maintenance', 'daily', '--dry-run', '--state-dir', missing],
      ['rollback', '--dry-run', '--state-dir', missing],
    ]) {
      const r = await spawnCli([...argv, '--json'], { cwd: dir });
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(2);
      expect(JSON.parse(r.stdout).error).toMatchObject({
        code: 'state_dir_missing',
        message: `no ifmesh state directory at ${missing} (--state-dir): nothing was deployed there`,
      });
    }
    const env = await spawnCli(['status'], { cwd: dir, env: { IFMESH_STATE_DIR: missing } });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain(`no ifmesh state directory at ${missing} (IFMESH_STATE_DIR)`);
    expect(existsSync(missing)).toBe(false);
    // preflight checks a host before its first deploy: a new state directory is its to name.
    const pre = await spawnCli(['preflight', '--state-dir', missing, '--json'], { cwd: dir });
    expect(pre.stderr).not.toContain('no ifmesh state directory');
  });

  it('runs selftest on the bundled fixtures and exits 0', async () => {
    const r = await spawnCli(['selftest', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.ok).toBe(true);
    expect(doc.checks.length).toBeGreaterThanOrEqual(5);
  });
});

describe('keys', () => {
  it('writes a 0600 private key and a public key, and refuses to overwrite without --force', async () => {
    const r = await spawnCli(['keys', 'generate', '--agent', 'agent-1', '--out', 'keys', '--json'], {
      cwd: dir,
    });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    const keyFile = path.join(dir, 'keys/agent-1.key');
    expect(doc.files).toEqual([keyFile, path.join(dir, 'keys/agent-1.pub')]);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(doc.public_key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.stdout).not.toContain(JSON.parse(readFileSync(keyFile, 'utf8')).private_key);

    const again = await spawnCli(['keys', 'generate', '--agent', 'agent-1', '--out', 'keys'], { cwd: dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists; refusing to overwrite');
    expect(JSON.parse(readFileSync(keyFile, 'utf8')).public_key).toBe(doc.public_key);

    const forced = await spawnCli(
      ['keys', 'generate', '--agent', 'agent-1', '--out', 'keys', '--force', '--json'],
      { cwd: dir },
    );
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout).public_key).not.toBe(doc.public_key);
  });

  it('shows the public key and key id of .key and .pub files alike', async () => {
    await run(['keys', 'generate', '--agent', 'agent-s', '--out', 'keys'], { cwd: dir });
    const a = JSON.parse((await run(['keys', 'show', 'keys/agent-s.key', '--json'], { cwd: dir })).stdout);
    const b = JSON.parse((await run(['keys', 'show', 'keys/agent-s.pub', '--json'], { cwd: dir })).stdout);
    expect(a.public_key).toBe(b.public_key);
    expect(a.key_id).toMatch(/^[0-9a-f]{16}$/);
    expect(a.agent_id).toBe('agent-s');
  });

  it('rejects an invalid agent id and a corrupted key file with exit 2', async () => {
    expect((await run(['keys', 'generate', '--agent', '../evil', '--out', 'keys'], { cwd: dir })).code).toBe(
      2,
    );
    writeFileSync(
      path.join(dir, 'broken.key'),
      '{"type":"ifmesh-ed25519-identity","agent_id":"x","private_key":"AAAA"}',
    );
    const r = await run(['keys', 'show', 'broken.key'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('private_key must be 32 bytes');
  });
});

describe('message sign | verify', () => {
  it('round-trips through the shell, and a tampered message exits 1 with its reason', async () => {
    await run(['keys', 'generate', '--agent', 'agent-m', '--out', 'keys'], { cwd: dir });
    const signed = await spawnCli(
      [
        'message',
        'sign',
        '--key',
        'keys/agent-m.key',
        '--to',
        'agent-2',
        '--type',
        'ping',
        '--payload',
        '{"n":1}',
      ],
      { cwd: dir },
    );
    expect(signed.code).toBe(0);
    const msg = JSON.parse(signed.stdout);
    expect(msg).toMatchObject({ v: 1, from: 'agent-m', to: 'agent-2', type: 'ping', payload: { n: 1 } });

    const ok = await spawnCli(['message', 'verify', '--pubkey', 'keys/agent-m.pub', '--json'], {
      cwd: dir,
      stdin: signed.stdout,
    });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, reason: null, from: 'agent-m' });

    const tampered = JSON.stringify({ ...msg, payload: { n: 2 } });
    const bad = await spawnCli(['message', 'verify', '--pubkey', 'keys/agent-m.pub', '--json'], {
      cwd: dir,
      stdin: tampered,
    });
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ valid: false, reason: 'bad_signature' });

    const wrongPeer = await run(['message', 'verify', '--pubkey', 'keys/agent-m.pub', '--from', 'agent-x'], {
      cwd: dir,
      stdin: signed.stdout,
    });
    expect(wrongPeer.code).toBe(1);
    expect(wrongPeer.stdout).toContain('rejected: wrong_sender');
  });

  it('refuses a payload that is not a JSON object with exit 2', async () => {
    await run(['keys', 'generate', '--agent', 'agent-p', '--out', 'keys'], { cwd: dir });
    const r = await run(
      ['message', 'sign', '--key', 'keys/agent-p.key', '--to', 'b', '--type', 'ping', '--payload', '[1]'],
      { cwd: dir },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--payload must be a JSON object');
  });
});

describe('interrupts', () => {
  it('exits 130 on SIGINT while a command waits for input', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [BIN, 'message', 'verify', '--pubkey', 'A'.repeat(43)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // Interrupted once it has started and sits waiting on stdin: its CPU time stops growing. Before
    // that, on a slow machine, the signal would find node still loading and kill it with no exit code.
    const { readFileSync } = await import('node:fs');
    const cpuTicks = () => {
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(f[11]) + Number(f[12]);
    };
    let last = -1;
    let still = 0;
    for (let i = 0; i < 600 && still < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const now = cpuTicks();
      still = now === last ? still + 1 : 0;
      last = now;
    }
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code).toBe(130);
    expect(stderr).toContain('interrupted');
  });
});

describe('colour', () => {
  it('is off for a pipe, on with FORCE_COLOR, and off with NO_COLOR even then', async () => {
    const args = ['selftest'];
    const esc = '\u001b[';
    expect((await run(args, { cwd: dir })).stdout).not.toContain(esc);
    expect((await run(args, { cwd: dir, tty: true })).stdout).toContain(esc);
    expect((await run(args, { cwd: dir, env: { FORCE_COLOR: '1' } })).stdout).toContain(esc);
    expect(
      (await run(args, { cwd: dir, tty: true, env: { NO_COLOR: '1', FORCE_COLOR: '1' } })).stdout,
    ).not.toContain(esc);
  });
});

describe('start-up', () => {
  it('loads only the invoked command module', async () => {
    const loaded: string[] = [];
    const originals = commands.map((c) => c.load);
    commands.forEach((c, i) => {
      c.load = () => {
        loaded.push(c.name);
        return originals[i]!();
      };
    });
    try {
      await run(['--help']);
      expect(loaded).toEqual([]);
      await run(['keys', '--help']);
      expect(loaded).toEqual(['keys']);
    } finally {
      commands.forEach((c, i) => {
        c.load = originals[i]!;
      });
    }
  });

  it('keeps heavy modules out of the CLI core', () => {
    const core = [
      'bin/ifmesh.ts',
      'src/cli/run.ts',
      'src/cli/registry.ts',
      'src/cli/context.ts',
      'src/ui/output.ts',
      'src/errors.ts',
    ];
    for (const file of core) {
      // `import type` is erased at compile time and loads nothing.
      const text = readFileSync(path.join(ROOT, file), 'utf8').replace(/^import type .*$/gm, '');
      expect(text, file).not.toMatch(/from ['"](werift|ink|react|better-sqlite3|undici|ws)['"]/);
    }
  });
});
