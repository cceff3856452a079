// The package installs as a user installs it, and runs werift with the DTLS nonce fix however it was
// installed. `npm pack` (which builds through `prepare`) in a copy of this tree, then three installs
// of that tarball or release, side by side:
//   - `npm install -g --prefix P ./ifmesh-<v>.tgz` into an empty prefix: --help, selftest, up, down;
//   - `npm install --prefix Q --ignore-scripts ./ifmesh-<v>.tgz`: no script runs at all;
//   - `npm ci --omit=dev` of a release (the packed files with package-lock.json): no devDependency.
// Each proves the fix on the wire with the werift it installed (src/agent/werift-dtls-probe.ts).
//
// npm reads packages from its cache (--prefer-offline) and the registry. better-sqlite3's prebuilt
// binary normally comes from GitHub, which these machines cannot reach (it then compiles from
// source, 2–4 min per install): the tests hand prebuild-install the binary `npm ci` built for this
// tree through its documented local-prebuilds setting, so each install takes seconds.
import { type ExecFileException, execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { ROOT, type RunResult, tempDir, testTmp } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const { dir, cleanup } = tempDir();
const npmTmp = path.join(dir, 'npm-tmp');
const prebuilds = path.join(dir, 'prebuilds');
const globalPrefix = path.join(dir, 'global');
const localPrefix = path.join(dir, 'ignore-scripts');
const release = path.join(dir, 'release');
const state = path.join(dir, 'state');
const installedPkg = path.join(globalPrefix, 'lib/node_modules/ifmesh');
const ifmesh = path.join(globalPrefix, 'bin/ifmesh');
let tarball: string;
const installs: Record<'global' | 'ignoreScripts' | 'omitDev', RunResult> = {} as never;
const stackPids = new Set<number>();

/** The environment without the npm_* variables `npm test` exports, so nested npm runs are a user's. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function run(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      {
        cwd: opts.cwd ?? dir,
        env: opts.env ?? cleanEnv(testTmp()),
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error: ExecFileException | null, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    trackPid(child.pid);
  });
}

/** npm as a user runs it: own temp dir (inside ours), the registry cache first, the local prebuild. */
const npm = (args: string[], cwd: string, timeoutMs = 240_000) =>
  run('npm', [...args, '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd,
    timeoutMs,
    env: cleanEnv({ TMPDIR: npmTmp, npm_config_better_sqlite3_local_prebuilds: prebuilds }),
  });

const explain = (r: RunResult) =>
  `exit ${r.code}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`;

/**
 * In a fresh node process, with the modules of the installed package at `pkgDir`: what the agent
 * module applies (unless `bare`), then a DTLS session between that werift's client and server.
 */
async function nonceCheck(pkgDir: string, bare = false) {
  const script = `
    import { pathToFileURL } from 'node:url';
    const load = (p) => import(pathToFileURL(process.env.PKG + '/' + p).href);
    const out = {};
    if (!process.env.BARE) {
      await load('dist/src/agent/agent.js');
      out.fix = (await load('dist/src/agent/werift-dtls-fix.js')).weriftDtlsFix;
    }
    const { probeDtlsNonces } = await load('dist/src/agent/werift-dtls-probe.js');
    const report = await probeDtlsNonces({ records: 24, timeoutMs: 15000 });
    out.applicationRecords = report.applicationRecords;
    out.reused = report.reused;
    console.log(JSON.stringify(out));
    process.exit(0);`;
  const r = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: dir,
    env: cleanEnv({ ...testTmp(), PKG: pkgDir, ...(bare ? { BARE: '1' } : {}) }),
  });
  expect(r.code, explain(r)).toBe(0);
  return JSON.parse(r.stdout) as {
    fix?: { version: string; tested: boolean; applied: boolean };
    applicationRecords: { client: number; server: number };
    reused: { sender: string; epoch: number; seq: number }[];
  };
}

beforeAll(async () => {
  mkdirSync(npmTmp);
  // better-sqlite3's prebuilt binary, named as prebuild-install looks for it, from this tree's build.
  const sqlite = path.join(ROOT, 'node_modules/better-sqlite3');
  const sqliteVersion = JSON.parse(readFileSync(path.join(sqlite, 'package.json'), 'utf8')).version;
  mkdirSync(prebuilds);
  const name = `better-sqlite3-v${sqliteVersion}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const tar = await run('tar', [
    'czf',
    path.join(prebuilds, name),
    '-C',
    sqlite,
    'build/Release/better_sqlite3.node',
  ]);
  expect(tar.code, explain(tar)).toBe(0);

  // A copy of the tree (its sources, not its dist/), packed as a release is: `npm pack` runs prepare,
  // which builds. node_modules is this tree's, for the build's TypeScript.
  const src = path.join(dir, 'src-copy');
  mkdirSync(src);
  for (const entry of [
    'bin',
    'commands',
    'src',
    'fixtures',
    'scripts',
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'README.md',
    'docs',
  ])
    cpSync(path.join(ROOT, entry), path.join(src, entry), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));
  const packed = await npm(['pack', '--pack-destination', dir], src, 120_000);
  expect(packed.code, explain(packed)).toBe(0);
  tarball = path.join(dir, `ifmesh-${pkg.version}.tgz`);
  expect(existsSync(tarball), explain(packed)).toBe(true);

  // A release directory: the packed files and the lockfile.
  mkdirSync(release);
  const untar = await run('tar', ['xzf', tarball, '-C', release, '--strip-components=1']);
  expect(untar.code, explain(untar)).toBe(0);
  cpSync(path.join(ROOT, 'package-lock.json'), path.join(release, 'package-lock.json'));

  // The three installs at once (each mostly waits on the disk and the cache).
  [installs.global, installs.ignoreScripts, installs.omitDev] = await Promise.all([
    npm(['install', '-g', '--prefix', globalPrefix, tarball], dir),
    npm(['install', '--prefix', localPrefix, '--ignore-scripts', tarball], dir),
    npm(['ci', '--omit=dev'], release),
  ]);
}, 600_000);

afterAll(async () => {
  if (existsSync(ifmesh) && existsSync(state)) {
    for (const p of listProcesses(openStateDir(state))) stackPids.add(p.pid);
    await run(ifmesh, ['down', '--state-dir', state], { timeoutMs: 30_000 });
  }
  for (const pid of stackPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  // Three installs of ~12,000 files each: rm -rf side by side is several times faster than rmSync.
  await Promise.all([globalPrefix, localPrefix, release].map((d) => run('rm', ['-rf', d])));
  cleanup();
}, 120_000);

describe('npm pack', () => {
  it('packs the built CLI, its fixtures and the DTLS fix, with no install-time script and no dev tool', async () => {
    const list = await run('tar', ['tzf', tarball]);
    const files = list.stdout.split('\n').filter(Boolean);
    for (const f of [
      'package/dist/bin/ifmesh.js',
      'package/dist/src/agent/agent.js',
      'package/dist/src/agent/werift-dtls-fix.js',
      'package/dist/src/agent/werift-dtls-probe.js',
      'package/fixtures/config/production.env',
      'package/scripts/prepare.mjs',
      // README links to docs/: an installed copy keeps them working.
      'package/docs/commands.md',
    ])
      expect(files).toContain(f);
    // Sources, tests and patch files stay home.
    expect(files.filter((f) => /\.ts$|^package\/(test|src|dist\/test|fixtures\/patches)\//.test(f))).toEqual(
      [],
    );
    const packedJson = JSON.parse(
      (await run('tar', ['xzf', tarball, '-O', 'package/package.json'])).stdout,
    ) as typeof pkg;
    for (const hook of ['preinstall', 'install', 'postinstall'])
      expect(packedJson.scripts).not.toHaveProperty(hook);
    expect(JSON.stringify(packedJson)).not.toContain('patch-package');
    expect(packedJson.engines).toEqual({ node: '>=20.19.0 <21' });
    // The agent module loads the fix before werift is used.
    const agentJs = (await run('tar', ['xzf', tarball, '-O', 'package/dist/src/agent/agent.js'])).stdout;
    expect(agentJs).toMatch(/^import '\.\/werift-dtls-fix\.js';$/m);
  });
});

describe('npm install -g --prefix <empty dir> ./ifmesh-<version>.tgz', () => {
  it('installs without a devDependency', () => {
    expect(installs.global.code, explain(installs.global)).toBe(0);
    expect(existsSync(path.join(installedPkg, 'node_modules/patch-package'))).toBe(false);
    expect(existsSync(path.join(installedPkg, 'node_modules/typescript'))).toBe(false);
  });

  it('runs werift with the nonce fix: none reused with the agent module, stock werift reuses without it', async () => {
    const fixed = await nonceCheck(installedPkg);
    expect(fixed.fix).toMatchObject({ applied: true, tested: true });
    expect(fixed.applicationRecords.client).toBeGreaterThanOrEqual(24);
    expect(fixed.applicationRecords.server).toBeGreaterThanOrEqual(24);
    expect(fixed.reused).toEqual([]);
    // The installed werift is npm's, unpatched (nothing ran at install time to change it): the
    // shipped module is what makes it safe. If a werift upgrade fixes this upstream, this line says so.
    const bare = await nonceCheck(installedPkg, true);
    expect(bare.reused.map((r) => r.sender).sort()).toEqual(['client', 'server']);
  }, 60_000);

  it('--help and selftest exit 0', async () => {
    const help = await run(ifmesh, ['--help']);
    expect(help.code, explain(help)).toBe(0);
    expect(help.stdout).toContain('selftest');
    const self = await run(ifmesh, ['selftest', '--json']);
    expect(self.code, explain(self)).toBe(0);
    expect(JSON.parse(self.stdout).ok).toBe(true);
  }, 60_000);

  it('up --agents 2 --instances 1 verifies a mesh of agents run from the installed package, and down stops it', async () => {
    const up = await run(
      ifmesh,
      ['up', '--agents', '2', '--instances', '1', '--state-dir', state, '--max-rtt-p95', '10s', '--json'],
      { timeoutMs: 180_000 },
    );
    for (const p of listProcesses(openStateDir(state))) stackPids.add(p.pid);
    expect(up.code, explain(up)).toBe(0);
    const doc = JSON.parse(up.stdout);
    expect(doc.verification.ok).toBe(true);
    expect(doc.mesh).toMatchObject({ agents: 2, connected: 2 });
    const agents = listProcesses(openStateDir(state)).filter((p) => p.role === 'agents');
    expect(agents).toHaveLength(2);
    for (const a of agents) {
      const cmdline = readFileSync(`/proc/${a.pid}/cmdline`, 'utf8').split('\0');
      expect(cmdline).toContain(path.join(installedPkg, 'dist/bin/ifmesh.js'));
    }
    const down = await run(ifmesh, ['down', '--state-dir', state], { timeoutMs: 60_000 });
    expect(down.code, explain(down)).toBe(0);
  }, 300_000);
});

describe('npm install --ignore-scripts', () => {
  const localPkg = path.join(localPrefix, 'node_modules/ifmesh');

  it('installs, runs, and runs werift with the nonce fix', async () => {
    expect(installs.ignoreScripts.code, explain(installs.ignoreScripts)).toBe(0);
    const help = await run(path.join(localPrefix, 'node_modules/.bin/ifmesh'), ['--help']);
    expect(help.code, explain(help)).toBe(0);
    const fixed = await nonceCheck(localPkg);
    expect(fixed.fix).toMatchObject({ applied: true });
    expect(fixed.reused).toEqual([]);
  }, 60_000);

  it('refuses to start an agent on a werift it cannot fix, naming the fix', async () => {
    // A werift whose encryptPacket takes the record number from somewhere else than the header.
    const weriftDir = path.join(localPrefix, 'node_modules/werift');
    const entry = path.join(weriftDir, 'lib/index.mjs');
    const text = readFileSync(entry, 'utf8');
    const at = text.indexOf('  encryptPacket(pkt) {');
    expect(at).toBeGreaterThan(0);
    const end = text.indexOf('sequenceNumber: header.sequenceNumber', at);
    writeFileSync(
      entry,
      `${text.slice(0, end)}sequenceNumber: 0${text.slice(end + 'sequenceNumber: header.sequenceNumber'.length)}`,
    );
    const r = await run(path.join(localPrefix, 'node_modules/.bin/ifmesh'), [
      'agent',
      'run',
      '--id',
      'agent-x',
      '--key',
      path.join(dir, 'no.key'),
      '--signaling',
      'ws://127.0.0.1:9',
    ]);
    expect(r.code, explain(r)).not.toBe(0);
    expect(r.stderr).toContain('the werift DTLS nonce fix (src/agent/werift-dtls-fix.ts) cannot be applied');
    expect(r.stderr).toContain('refuses to run it');
  }, 60_000);
});

describe('npm ci --omit=dev of a release', () => {
  it('installs without TypeScript (prepare uses the built dist/), runs, and runs werift with the fix', async () => {
    expect(installs.omitDev.code, explain(installs.omitDev)).toBe(0);
    expect(`${installs.omitDev.stdout}${installs.omitDev.stderr}`).toContain(
      'TypeScript is not installed (--omit=dev); using the built dist/',
    );
    expect(readdirSync(path.join(release, 'node_modules'))).not.toContain('typescript');
    const bin = path.join(release, 'dist/bin/ifmesh.js');
    const help = await run(process.execPath, [bin, '--help'], { cwd: release });
    expect(help.code, explain(help)).toBe(0);
    const self = await run(process.execPath, [bin, 'selftest'], { cwd: release });
    expect(self.code, explain(self)).toBe(0);
    const fixed = await nonceCheck(release);
    expect(fixed.fix).toMatchObject({ applied: true, tested: true });
    expect(fixed.reused).toEqual([]);
  }, 60_000);

  it('prepare fails naming the fix when a directory has neither TypeScript nor a built dist/', async () => {
    const bare = path.join(dir, 'no-dist');
    mkdirSync(bare);
    const r = await run(process.execPath, [path.join(release, 'scripts/prepare.mjs')], { cwd: bare });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('dist/ is not built and TypeScript is not installed');
  });
});
