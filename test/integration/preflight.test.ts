import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { getGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemExec } from '../../src/cli/context.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { PreflightReport } from '../../src/ops/preflight/index.js';
import { runChecks, runPreflight } from '../../src/ops/preflight/index.js';
import { recordProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { run, spawnCli, tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { startCoturn } from '../helpers/coturn.js';
import { freePort } from '../helpers/processes.js';
import { makeCa, makeCert, makeExpiredCert, type TestCert } from '../helpers/tls.js';
import { terminal } from '../helpers/tmux.js';
import { API_KEY, type RunningWitness, startWitness } from '../helpers/witness.js';

let tmp: { dir: string; cleanup: () => void };
let witness: RunningWitness;
let coturn: RunningTurnserver;
let good: TestCert;
let configFile: string;
const env = { PATH: process.env.PATH ?? '' };
const ESC = '\u001b[';

beforeAll(async () => {
  tmp = tempDir();
  [witness, coturn] = await Promise.all([startWitness(), startCoturn('pf-user', 'pf-pass')]);
  good = makeCert(tmp.dir, 'good', 30);
  const turnPort = new URL(coturn.url.replace(/^turn:/, 'turn://')).port;
  configFile = path.join(tmp.dir, 'mesh.env');
  writeFileSync(
    configFile,
    [
      'SIGNALING_HOST=127.0.0.1',
      `SIGNALING_PORT=${await freePort()}`,
      `SIGNALING_TLS_CERT=${good.cert}`,
      `SIGNALING_TLS_KEY=${good.key}`,
      `STUN_SERVERS=stun:127.0.0.1:${turnPort}`,
      `TURN_SERVERS=turn:127.0.0.1:${turnPort}?transport=udp`,
      'TURN_USERNAME=pf-user',
      'TURN_PASSWORD=pf-pass',
      `IF_WITNESS_ENDPOINT=${witness.url}`,
      `IF_WITNESS_API_KEY=${API_KEY}`,
      '',
    ].join('\n'),
  );
}, 60_000);
afterAll(async () => {
  await Promise.all([witness?.stop(), coturn?.stop()]);
  tmp?.cleanup();
});

async function preflight(
  ...set: string[]
): Promise<{ code: number; report: PreflightReport; stdout: string }> {
  const argv = ['preflight', '--config', configFile, '--state-dir', path.join(tmp.dir, 'state'), '--json'];
  for (const s of set) argv.push('--set', s);
  const r = await run(argv, { env, cwd: tmp.dir });
  return { code: r.code, report: JSON.parse(r.stdout) as PreflightReport, stdout: r.stdout };
}

function check(report: PreflightReport, prefix: string) {
  const c = report.checks.find((k) => k.name.startsWith(prefix));
  if (!c) throw new Error(`no check named ${prefix}: ${report.checks.map((k) => k.name).join(', ')}`);
  return c;
}

/** The checks other than `prefix` all passed: each broken condition fails its own line only. */
function othersPass(report: PreflightReport, prefix: string) {
  const others = report.checks.filter((k) => !k.name.startsWith(prefix) && k.status === 'fail');
  expect(others.map((k) => `${k.name}: ${k.detail}`)).toEqual([]);
}

describe('ifmesh preflight against a real witness, coturn and certificates', () => {
  it('passes everything on a healthy setup (exit 0), probing STUN and TURN for real', async () => {
    const { code, report } = await preflight();
    // Development mode: the production rules this setup breaks are warnings, nothing else is.
    expect(report.checks.filter((k) => k.status !== 'ok').map((k) => [k.name, k.status])).toEqual([
      ['production: witness over https', 'warn'],
      ['production: admin token', 'warn'],
      ['production: allow-list', 'warn'],
    ]);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(check(report, 'TURN').detail).toMatch(/Allocate accepted.*released/);
    expect(check(report, 'STUN').detail).toMatch(/mapped 127\.0\.0\.1:/);
    expect(check(report, 'IF.witness').detail).toMatch(/API key accepted/);
    // The key probe wrote nothing to the audit log.
    const health = await fetch(`${witness.url}/health`, { signal: AbortSignal.timeout(5_000) });
    expect(((await health.json()) as { tree_size: number }).tree_size).toBe(0);
  }, 60_000);

  it('runs from the built binary as a user runs it: one JSON document, exit 0', async () => {
    const r = await spawnCli(
      ['preflight', '--config', configFile, '--state-dir', path.join(tmp.dir, 'state'), '--json'],
      {
        cwd: tmp.dir,
        timeoutMs: 60_000,
      },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, counts: { fail: 0 } });
  }, 90_000);

  it('without a terminal: one line per check as it ends, each once, then the fixes and the verdict', async () => {
    const args = ['preflight', '--config', configFile, '--set', 'TURN_PASSWORD=nope'];
    const r = await run(args, { env, cwd: tmp.dir });
    const { checks } = JSON.parse((await run([...args, '--json'], { env, cwd: tmp.dir })).stdout);
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    for (const { name } of checks as { name: string }[])
      expect(
        lines.filter((l) => /^[✓✗!] /.test(l) && l.slice(2).startsWith(`${name} `)),
        name,
      ).toHaveLength(1);
    expect(r.stdout).toMatch(/^✓ Node\.js version v\d/m);
    expect(r.stdout).toMatch(/^✗ TURN turn:127\.0\.0\.1:\d+\?transport=udp Allocate refused: 401/m);
    // The checks are not printed again as a checklist: what to fix, then the verdict.
    expect(r.stdout).not.toContain(' — Allocate refused');
    expect(r.stdout).toMatch(
      /^fix: TURN turn:127\.0\.0\.1:\d+\?transport=udp — TURN_USERNAME\/TURN_PASSWORD are not accepted/m,
    );
    expect(lines.at(-1)).toBe('1 of 14 checks failed: do not deploy');
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toContain('nope');
  }, 60_000);

  it('on a terminal (tmux): the live checklist is replaced by the result, every check shown once', async () => {
    const t = terminal(['preflight', '--config', configFile, '--state-dir', path.join(tmp.dir, 'state')], {
      cwd: tmp.dir,
      cols: 200,
      rows: 50,
    });
    try {
      expect(await t.exitCode()).toBe(0);
      const screen = t.screen();
      const { checks } = (await preflight()).report;
      // The result's rendering ("name — detail"), and no line left of the progress view ("name detail").
      const rows = screen.split('\n');
      for (const { name } of checks) {
        const marked = rows.filter((l) => /^[✓✗!⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] /.test(l) && l.slice(2).startsWith(name));
        expect(marked, name).toHaveLength(1);
        expect(marked[0]!.slice(2).startsWith(`${name} — `), marked[0]).toBe(true);
      }
      expect(rows.filter((l) => l.includes('ready to deploy'))).toEqual([
        expect.stringMatching(/^all 14 checks passed/),
      ]);
    } finally {
      t.kill();
    }
  }, 60_000);

  it('shows live progress with the ink view when stderr is a terminal, plain lines on stdout otherwise', async () => {
    const args = ['preflight', '--config', configFile, '--state-dir', path.join(tmp.dir, 'state')];
    const tty = await run(args, { env, cwd: tmp.dir, tty: true });
    expect(tty.code, tty.stderr.slice(-3000)).toBe(0);
    // ink redraws with cursor movement, then erases its frame for the result on stdout.
    expect(tty.stderr).toContain(ESC);
    expect(tty.stderr).toContain('TLS certificate and key');
    expect(stripVTControlCharacters(tty.stdout)).toMatch(/^✓ TLS certificate and key — /m);
    const plain = await run(args, { env, cwd: tmp.dir });
    expect(plain.stdout + plain.stderr).not.toContain(ESC);
    expect(plain.stdout).toMatch(/^✓ signaling port free 127\.0\.0\.1:\d+$/m);
    // a warning is a warning in progress lines too, never a tick with a "!" in its detail
    expect(plain.stdout).toMatch(/^! production: admin token SIGNALING_ADMIN_TOKEN is not set/m);
    expect(plain.stdout).not.toMatch(/^✓ .* ! /m);
  }, 60_000);

  it('fails when the signaling port is taken', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as { port: number }).port;
      const { code, report } = await preflight(`SIGNALING_PORT=${port}`);
      expect(code).toBe(1);
      expect(check(report, 'signaling port')).toMatchObject({
        status: 'fail',
        detail: `127.0.0.1:${port} is already in use`,
      });
      othersPass(report, 'signaling port');
      // Held by this fleet's own instance (preflight on a running fleet): not a failure.
      const state = openStateDir(path.join(tmp.dir, 'state'));
      recordProcess(state, {
        name: 'deploy-signaling-1',
        role: 'signaling',
        pid: process.pid,
        port,
        owner: 'deploy',
        started_at: new Date().toISOString(),
      });
      try {
        const own = await preflight(`SIGNALING_PORT=${port}`);
        expect(check(own.report, 'signaling port')).toMatchObject({
          status: 'ok',
          detail: `127.0.0.1:${port} is held by deploy-signaling-1, this fleet's instance (a deploy replaces it)`,
        });
      } finally {
        rmSync(state.processFile('deploy-signaling-1'));
      }
    } finally {
      await new Promise((r) => busy.close(r));
    }
  }, 60_000);

  it('fails on an expired certificate, on a key of another certificate, and on one expiring within 7 days', async () => {
    const expired = makeExpiredCert(tmp.dir, 'expired');
    const other = makeCert(tmp.dir, 'other', 30);
    const soon = makeCert(tmp.dir, 'soon', 3);
    const a = await preflight(`SIGNALING_TLS_CERT=${expired.cert}`, `SIGNALING_TLS_KEY=${expired.key}`);
    expect(check(a.report, 'TLS')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^expired on .*2020/),
    });
    expect(a.code).toBe(1);
    othersPass(a.report, 'TLS');
    const b = await preflight(`SIGNALING_TLS_KEY=${other.key}`);
    expect(check(b.report, 'TLS')).toMatchObject({
      status: 'fail',
      detail: `${other.key} is not the key of ${good.cert}`,
    });
    const c = await preflight(`SIGNALING_TLS_CERT=${soon.cert}`, `SIGNALING_TLS_KEY=${soon.key}`);
    expect(check(c.report, 'TLS')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^expires in [23] day/),
    });
    // A fleet with a CA of its own: a certificate it did not issue would be refused by every agent.
    const ca = makeCa(tmp.dir, 'pf-ca');
    const e = await preflight(`IFMESH_CA_FILE=${ca.cert}`);
    expect(check(e.report, 'TLS')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining(`not issued by ${ca.cert}`),
    });
    othersPass(e.report, 'TLS');
    const d = await preflight(`SIGNALING_TLS_CERT=${path.join(tmp.dir, 'absent.crt')}`);
    expect(check(d.report, 'TLS')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('absent.crt does not exist'),
    });
  }, 90_000);

  it('fails when the witness is down, and when it refuses the API key', async () => {
    const down = await preflight(`IF_WITNESS_ENDPOINT=http://127.0.0.1:${await freePort()}`);
    expect(check(down.report, 'IF.witness')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/unreachable/),
    });
    othersPass(down.report, 'IF.witness');
    const wrong = await preflight('IF_WITNESS_API_KEY=not-the-key');
    expect(check(wrong.report, 'IF.witness')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/refused the API key \(401\)/),
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).not.toContain('not-the-key');
  }, 60_000);

  it('fails a STUN server that does not answer, within its timeout', async () => {
    const { code, report } = await preflight(`STUN_SERVERS=stun:127.0.0.1:${await freePort()}`);
    expect(code).toBe(1);
    expect(check(report, 'STUN')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/no STUN answer|ECONNREFUSED/),
    });
    othersPass(report, 'STUN');
  }, 60_000);

  it('fails a TURN server that refuses the password', async () => {
    const { code, report } = await preflight('TURN_PASSWORD=wrong-pass');
    expect(code).toBe(1);
    expect(check(report, 'TURN')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/401/) });
    othersPass(report, 'TURN');
  }, 60_000);

  it("fails an invalid configuration with the validator's message and skips what depends on it", async () => {
    const { code, report } = await preflight('SIGNALING_PORT=99999');
    expect(code).toBe(1);
    expect(check(report, 'configuration')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('SIGNALING_PORT'),
    });
    expect(check(report, 'signaling port').status).toBe('warn');
  }, 60_000);
});

describe('preflight on a broken installation', () => {
  it('fails an old Node, missing npm packages and a missing build; warns about missing binaries', async () => {
    const broken = tempDir();
    try {
      writeFileSync(
        path.join(broken.dir, 'package.json'),
        JSON.stringify({
          dependencies: { 'ifmesh-no-such-package': '1.0.0' },
          bin: { ifmesh: 'dist/bin/ifmesh.js' },
        }),
      );
      const ctx = {
        clock: systemClock,
        signal: new AbortController().signal,
        exec: systemExec,
        dispatcher: getGlobalDispatcher(),
        env: { PATH: broken.dir },
        cwd: broken.dir,
      };
      const r = await runPreflight(ctx, {
        configFile,
        state: openStateDir(path.join(broken.dir, 'state')),
        root: broken.dir,
        nodeVersion: '18.19.0',
      });
      expect(r.ok).toBe(false);
      expect(check(r, 'Node.js')).toMatchObject({ status: 'fail', detail: 'v18.19.0 is older than 20.19' });
      expect(check(r, 'dependencies')).toMatchObject({
        status: 'fail',
        detail: 'missing npm packages: ifmesh-no-such-package',
      });
      expect(check(r, 'build')).toMatchObject({
        status: 'fail',
        detail: expect.stringMatching(/^dist\/bin\/ifmesh\.js missing/),
      });

      // Packages present but no turnserver/nginx/openssl on PATH: a warning, not a failure.
      const r2 = await runPreflight(
        { ...ctx, cwd: tmp.dir },
        { configFile, state: openStateDir(path.join(broken.dir, 'state')) },
      );
      expect(check(r2, 'dependencies')).toMatchObject({
        status: 'warn',
        detail: expect.stringContaining('turnserver (Debian package coturn)'),
      });
    } finally {
      broken.cleanup();
    }
  }, 60_000);

  it('bounds a hung check by its timeout, on the injected clock, without holding up the others', async () => {
    const clock = new FakeClock();
    const ctx = {
      clock,
      signal: new AbortController().signal,
      exec: systemExec,
      dispatcher: getGlobalDispatcher(),
      env,
      cwd: tmp.dir,
    };
    const pending = runChecks(
      [
        { name: 'hangs', timeoutMs: 5_000, run: () => new Promise(() => {}) },
        { name: 'quick', timeoutMs: 5_000, run: async () => ({ status: 'ok', detail: 'fine' }) },
      ],
      {
        ctx,
        loaded: undefined,
        configError: undefined,
        production: undefined,
        state: openStateDir(tmp.dir),
        root: tmp.dir,
        nodeVersion: '20.19.0',
      },
    );
    await clock.advance(5_000);
    const r = await pending;
    expect(r.checks.map((k) => [k.name, k.status, k.duration_ms])).toEqual([
      ['hangs', 'fail', 5_000],
      ['quick', 'ok', 0],
    ]);
    expect(r.verdict).toBe('1 of 2 checks failed: do not deploy');
  });
});
