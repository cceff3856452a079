// Strict in production (issue 20, point 4): every production rule failing alone makes preflight ✗
// that rule's line with its fix and makes deploy refuse (exit 2) before it starts anything; a
// complete production configuration has no such failure; outside production the gaps are warnings.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { getGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemExec } from '../../src/cli/context.js';
import { generateKeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { PreflightReport } from '../../src/ops/preflight/index.js';
import { runPreflight } from '../../src/ops/preflight/index.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { run, spawnCli, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { freePort, startSignalingProcess } from '../helpers/processes.js';
import { connect } from '../helpers/signaling.js';
import { makeCert } from '../helpers/tls.js';
import { API_KEY, type RunningWitness, startWitness } from '../helpers/witness.js';

const tmp = tempDir();
const PATH = { PATH: process.env.PATH ?? '' };
let coturn: RunningTurnserver;
let witness: RunningWitness;
/** The complete production configuration, key by key; written to `envFile`. */
let complete: Record<string, string>;
let envFile: string;

beforeAll(async () => {
  [coturn, witness] = await Promise.all([startCoturn('prod-user', 'prod-pass'), startWitness()]);
  const cert = makeCert(tmp.dir, 'signaling', 30);
  const turnPort = new URL(coturn.url.replace(/^turn:/, 'turn://')).port;
  // One agent, on the allow-list with its own key: deploy has something real to start if it is not refused.
  await run(['keys', 'generate', '--agent', 'agent-p1', '--out', 'keys'], { cwd: tmp.dir });
  mkdirSync(path.join(tmp.dir, 'config/agents'), { recursive: true });
  writeFileSync(
    path.join(tmp.dir, 'config/agents/agent-p1.json'),
    JSON.stringify({ agent_id: 'agent-p1', key: '../../keys/agent-p1.key', loopback: true }),
  );
  const pub = JSON.parse(readFileSync(path.join(tmp.dir, 'keys/agent-p1.pub'), 'utf8')).public_key;
  writeFileSync(path.join(tmp.dir, 'allow-keys'), `${pub} agent-p1\n`);
  complete = {
    PRODUCTION_MODE: 'true',
    SIGNALING_HOST: '127.0.0.1',
    SIGNALING_PORT: String(await freePort()),
    SIGNALING_TLS_CERT: cert.cert,
    SIGNALING_TLS_KEY: cert.key,
    STUN_SERVERS: `stun:127.0.0.1:${turnPort}`,
    TURN_SERVERS: `turn:127.0.0.1:${turnPort}?transport=udp`,
    TURN_USERNAME: 'prod-user',
    TURN_PASSWORD: 'prod-pass',
    // Nothing answers there: the witness line fails, and only it, on the complete configuration.
    IF_WITNESS_ENDPOINT: `https://127.0.0.1:${await freePort()}`,
    IF_WITNESS_API_KEY: API_KEY,
    SIGNALING_ADMIN_TOKEN: 'a-long-random-admin-token',
    SIGNALING_ALLOW_KEYS: path.join(tmp.dir, 'allow-keys'),
    SIGNALING_CLUSTER_URL: 'rediss://redis.example.net:6380',
  };
  envFile = path.join(tmp.dir, 'webrtc-production.env');
  writeFileSync(
    envFile,
    `${Object.entries(complete)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
  );
}, 60_000);
afterAll(async () => {
  await Promise.all([coturn?.stop(), witness?.stop()]);
  tmp.cleanup();
});

const WITNESS_LINE = 'IF.witness reachable, API key accepted';
const failing = (r: PreflightReport) => r.checks.filter((k) => k.status === 'fail').map((k) => k.name);

async function preflight(set: Record<string, string>, o: { noFile?: boolean } = {}) {
  const argv = ['preflight', '--state-dir', path.join(tmp.dir, 'pf-state'), '--json'];
  if (!o.noFile) argv.push('--config', envFile);
  for (const [k, v] of Object.entries(set)) argv.push('--set', `${k}=${v}`);
  // Without a file, the configuration comes from the environment, in a directory with no env file.
  const cwd = o.noFile ? path.join(tmp.dir, 'config') : tmp.dir;
  const r = await run(argv, { env: { ...PATH, ...(o.noFile ? complete : {}) }, cwd });
  return { code: r.code, report: JSON.parse(r.stdout) as PreflightReport };
}

async function deploy(
  state: string,
  set: Record<string, string>,
  o: { noFile?: boolean; extra?: string[] } = {},
) {
  const argv = ['deploy', '--state-dir', state, '--agents-dir', path.join(tmp.dir, 'config/agents')];
  argv.push('--base-port', '18720', '--nginx-port', '18719', ...(o.extra ?? []));
  if (!o.noFile) argv.push('--config', envFile);
  for (const [k, v] of Object.entries(set)) argv.push('--set', `${k}=${v}`);
  const cwd = o.noFile ? path.join(tmp.dir, 'config') : tmp.dir;
  return run(argv, { env: { ...PATH, ...(o.noFile ? complete : {}) }, cwd });
}

interface Case {
  rule: string;
  /** The preflight line that carries the rule. */
  line: string;
  set: Record<string, string>;
  noFile?: boolean;
  detail: RegExp;
  fix: RegExp;
}

const cases = (): Case[] => [
  {
    rule: 'env file',
    line: 'production: env file',
    set: {},
    noFile: true,
    detail: /no env file read/,
    fix: /create config\/webrtc-production\.env .*or pass --config FILE/,
  },
  {
    rule: 'TLS files',
    line: 'TLS certificate and key',
    set: { SIGNALING_TLS_KEY: path.join(tmp.dir, 'absent.key') },
    detail: /SIGNALING_TLS_KEY .*absent\.key does not exist/,
    fix: /point SIGNALING_TLS_CERT and SIGNALING_TLS_KEY at readable PEM files/,
  },
  {
    rule: 'TLS files',
    line: 'TLS certificate and key',
    // A directory where the certificate should be: there, but not readable as a file.
    set: { SIGNALING_TLS_CERT: path.join(tmp.dir, 'keys') },
    detail: /SIGNALING_TLS_CERT .*keys is not a regular file/,
    fix: /readable PEM files/,
  },
  {
    rule: 'witness over https',
    line: 'production: witness over https',
    set: { IF_WITNESS_ENDPOINT: witness.url },
    detail: /IF_WITNESS_ENDPOINT is http:\/\/127\.0\.0\.1:\d+: .*in clear/,
    fix: /https:\/\//,
  },
  {
    rule: 'admin token',
    line: 'production: admin token',
    set: { SIGNALING_ADMIN_TOKEN: '' },
    detail: /SIGNALING_ADMIN_TOKEN is not set/,
    fix: /openssl rand -hex 32/,
  },
  {
    rule: 'allow-list',
    line: 'production: allow-list',
    set: { SIGNALING_ALLOW_KEYS: '' },
    detail: /SIGNALING_ALLOW_KEYS is not set/,
    fix: /PUBLIC_KEY AGENT_ID/,
  },
  {
    rule: 'allow-list',
    line: 'production: allow-list',
    set: { SIGNALING_ALLOW_KEYS: path.join(tmp.dir, 'empty-allow-keys') },
    detail: /lists no agents/,
    fix: /PUBLIC_KEY AGENT_ID/,
  },
  {
    rule: 'cluster Redis over TLS',
    line: 'production: cluster Redis over TLS',
    set: { SIGNALING_CLUSTER_URL: 'redis://192.0.2.10:6379' },
    detail: /redis:\/\/192\.0\.2\.10:6379, off loopback without TLS/,
    fix: /rediss:\/\//,
  },
];

describe('preflight and deploy with PRODUCTION_MODE=true', () => {
  it('a complete production configuration has no production failure, and deploy --dry-run plans it', async () => {
    const { report } = await preflight({});
    // Only the witness line fails: nothing answers at its https URL.
    expect(failing(report)).toEqual([WITNESS_LINE]);
    const production = report.checks.filter((k) => k.name.startsWith('production:'));
    expect(production.map((k) => [k.name, k.status])).toEqual([
      ['production: env file', 'ok'],
      ['production: witness over https', 'ok'],
      ['production: admin token', 'ok'],
      ['production: allow-list', 'ok'],
      ['production: cluster Redis over TLS', 'ok'],
    ]);
    expect(report.checks.find((k) => k.name === 'production: allow-list')?.detail).toMatch(/1 agent$/);
    expect(report.checks.find((k) => k.name.startsWith('TLS'))?.status).toBe('ok');
    // A Redis on loopback needs no TLS.
    const loopback = await preflight({ SIGNALING_CLUSTER_URL: 'redis://127.0.0.1:6379' });
    expect(failing(loopback.report)).toEqual([WITNESS_LINE]);
    const state = path.join(tmp.dir, 'state-complete');
    const dry = await deploy(state, {}, { extra: ['--dry-run', '--json'] });
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout).applied).toBe(false);
    expect(existsSync(state)).toBe(false);
  }, 60_000);

  it('each rule failing alone: preflight ✗ on its line with the fix (exit 1); deploy refuses it (exit 2) and starts nothing', async () => {
    writeFileSync(path.join(tmp.dir, 'empty-allow-keys'), '# nobody yet\n');
    for (const [i, c] of cases().entries()) {
      const what = `${c.rule} (${JSON.stringify(c.set)})`;
      const { code, report } = await preflight(c.set, { noFile: c.noFile });
      const line = report.checks.find((k) => k.name === c.line);
      expect(line, what).toMatchObject({ status: 'fail', detail: expect.stringMatching(c.detail) });
      expect(line?.hint, what).toMatch(c.fix);
      expect(code, what).toBe(1);
      // The rule's line fails, and besides it only the witness line (nothing answers at the https URL).
      const expected = c.rule === 'witness over https' ? [c.line] : [WITNESS_LINE, c.line];
      expect(failing(report).sort(), what).toEqual(expected.sort());

      const state = path.join(tmp.dir, `state-${i}`);
      for (const extra of [[], ['--dry-run']]) {
        const r = await deploy(state, c.set, { noFile: c.noFile, extra });
        expect(r.code, what).toBe(2);
        const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
        expect(errors, what).toEqual([expect.stringContaining(`error: production rule "${c.rule}": `)]);
        expect(errors[0], what).toMatch(c.detail);
        expect(errors[0], what).toMatch(c.fix);
        expect(r.stderr).toContain("hint: fix each, then run 'ifmesh preflight'");
      }
      // Nothing started: no state directory, so no process records and no processes.
      expect(existsSync(state), what).toBe(false);
      expect(listProcesses(openStateDir(state)), what).toEqual([]);
    }
  }, 120_000);

  it('the built binary refuses with exit 2 and a JSON error naming every failing rule', async () => {
    const state = path.join(tmp.dir, 'state-binary');
    const r = await spawnCli(
      [
        'deploy',
        '--json',
        '--config',
        envFile,
        '--state-dir',
        state,
        '--agents-dir',
        path.join(tmp.dir, 'config/agents'),
        '--set',
        'SIGNALING_ADMIN_TOKEN=',
        '--set',
        `IF_WITNESS_ENDPOINT=${witness.url}`,
        '--set',
        'SIGNALING_CLUSTER_URL=redis://192.0.2.10:6379',
      ],
      { cwd: tmp.dir, timeoutMs: 30_000 },
    );
    expect(r.code).toBe(2);
    const { error } = JSON.parse(r.stdout) as { error: { code: string; issues: { key: string }[] } };
    expect(error.code).toBe('production_refused');
    expect(error.issues.map((i) => i.key)).toEqual([
      'production rule "witness over https"',
      'production rule "admin token"',
      'production rule "cluster Redis over TLS"',
    ]);
    expect(r.stdout).not.toContain('a-long-random-admin-token');
    expect(existsSync(state)).toBe(false);
  }, 60_000);
});

describe('the same gaps outside production mode', () => {
  it('are warnings: preflight passes (exit 0) and deploy --dry-run is not refused', async () => {
    const gaps = {
      PRODUCTION_MODE: 'false',
      SIGNALING_TLS_CERT: '',
      SIGNALING_TLS_KEY: '',
      IF_WITNESS_ENDPOINT: witness.url,
      SIGNALING_ADMIN_TOKEN: '',
      SIGNALING_ALLOW_KEYS: '',
      SIGNALING_CLUSTER_URL: 'redis://192.0.2.10:6379',
    };
    const { code, report } = await preflight(gaps, { noFile: true });
    expect(failing(report)).toEqual([]);
    expect(code).toBe(0);
    const warned = report.checks.filter((k) => k.status === 'warn');
    expect(warned.map((k) => k.name)).toEqual([
      'TLS certificate and key',
      'production: env file',
      'production: witness over https',
      'production: admin token',
      'production: allow-list',
      'production: cluster Redis over TLS',
    ]);
    for (const k of warned) expect(k.hint, k.name).toBeTruthy();
    expect(warned.find((k) => k.name === 'production: admin token')?.detail).toMatch(
      /a ✗ when PRODUCTION_MODE=true/,
    );
    const state = path.join(tmp.dir, 'state-dev');
    const dry = await deploy(state, gaps, { noFile: true, extra: ['--dry-run', '--json'] });
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout).applied).toBe(false);
    expect(existsSync(state)).toBe(false);
  }, 60_000);
});

describe("preflight's build check runs the binary's selftest", () => {
  const ctx = (cwd: string) => ({
    clock: systemClock,
    signal: new AbortController().signal,
    exec: systemExec,
    dispatcher: getGlobalDispatcher(),
    env: PATH,
    cwd,
  });
  const build = (r: PreflightReport) => r.checks.find((k) => k.name.startsWith('build'))!;

  it('passes on the real build, and fails a binary that exists but does not run or fails its selftest', async () => {
    const real = await runPreflight(ctx(tmp.dir), {
      configFile: envFile,
      state: openStateDir(path.join(tmp.dir, 'b')),
    });
    expect(build(real)).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/^dist\/bin\/ifmesh\.js selftest: \d+ checks passed$/),
    });
    // Installations whose dist/bin/ifmesh.js is there but broken: a file-exists test would pass them.
    const fake = (name: string, script: string) => {
      const root = path.join(tmp.dir, name);
      mkdirSync(path.join(root, 'dist/bin'), { recursive: true });
      writeFileSync(
        path.join(root, 'package.json'),
        JSON.stringify({ bin: { ifmesh: 'dist/bin/ifmesh.js' } }),
      );
      writeFileSync(path.join(root, 'dist/bin/ifmesh.js'), script);
      return root;
    };
    const crashes = fake('crashes', "throw new Error('Cannot find module ./half-built.js');\n");
    const failsSelftest = fake(
      'fails-selftest',
      `process.stdout.write(${JSON.stringify(
        JSON.stringify({ ok: false, checks: [{ name: 'RFC 8785 vectors', ok: false, detail: 'mismatch' }] }),
      )}); process.exitCode = 1;\n`,
    );
    for (const [root, detail] of [
      [
        crashes,
        /^dist\/bin\/ifmesh\.js selftest does not run: Error: Cannot find module \.\/half-built\.js$/,
      ],
      [failsSelftest, /^dist\/bin\/ifmesh\.js selftest: 1 check\(s\) failed: RFC 8785 vectors — mismatch$/],
    ] as const) {
      const r = await runPreflight(ctx(tmp.dir), {
        configFile: envFile,
        state: openStateDir(path.join(tmp.dir, 'b')),
        root,
      });
      expect(build(r)).toMatchObject({ status: 'fail', detail: expect.stringMatching(detail) });
      expect(build(r).hint).toBeTruthy();
    }
  }, 60_000);
});

describe('SIGNALING_ALLOW_KEYS', () => {
  it('is the allow-list signaling serve enforces, as --allow-keys is', async () => {
    const [listed, other] = [generateKeyPair(), generateKeyPair()];
    const list = path.join(tmp.dir, 'serve-allow-keys');
    writeFileSync(list, `${toBase64url(listed.publicKey)} agent-a\n`);
    const s = await startSignalingProcess([], { SIGNALING_ALLOW_KEYS: list });
    try {
      const stranger = await connect(s.url);
      const hello = await stranger.next('hello');
      stranger.send(stranger.registerFrame('agent-a', hello.nonce, other));
      expect(await stranger.next('error')).toMatchObject({ code: 'key_not_allowed' });
      expect((await stranger.closed).code).toBe(4401);
      const member = await connect(s.url);
      expect(await member.register('agent-a', listed)).toMatchObject({ type: 'registered' });
      member.close();
    } finally {
      await s.stop();
    }
  }, 30_000);
});
