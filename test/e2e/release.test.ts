// A release is installed code: `deploy --release ./ifmesh-<v>.tgz` installs the tarball once into
// <state>/releases/<id>/ (npm, offline from the cache) and runs the fleet's agents and signaling
// from that release's own entry script (their /proc cmdline says so); a tarball that is not a
// package, or a package that does not run, leaves nothing installed. The canary of a new build and
// rollback across builds are in release-canary.test.ts (full tier).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { type DeployDeps, startDeployDeps, writeAgentConfigs } from '../helpers/deploy.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { entryScript, PACKAGE_VERSION, packRelease } from '../helpers/release.js';

const { dir, cleanup } = tempDir();
const states: string[] = [];
let deps: DeployDeps;
let tarball: string;

beforeAll(async () => {
  deps = await startDeployDeps();
  await writeAgentConfigs(dir, ['agent-i1']);
  tarball = await packRelease(path.join(dir, 'packs'));
}, 120_000);
afterAll(async () => {
  for (const s of states) await spawnCli(['down', '--state-dir', s], { cwd: dir, timeoutMs: 60_000 });
  await deps?.stop();
  cleanup();
}, 120_000);

const cli = (args: string[], state: string, timeoutMs = 240_000) =>
  spawnCli([...args, '--state-dir', state], { cwd: dir, env: deps.env, timeoutMs });
const sha512 = (file: string) => `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
/** What is under releases/ besides records and `current`: installed releases and leftovers. */
const installedDirs = (state: string) => {
  const d = openStateDir(state).releases;
  return existsSync(d)
    ? readdirSync(d).filter((f) => !f.endsWith('.json') && f !== 'current' && f !== '.prebuilds')
    : [];
};

describe('deploy --release <tarball>', () => {
  it('--dry-run says what would be installed and installs nothing', async () => {
    const state = path.join(dir, 'dry');
    const r = await cli(['deploy', '--release', tarball, '--instances', '1', '--dry-run', '--json'], state);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout).plan;
    expect(plan.release).toMatchObject({
      source: { kind: 'tarball', path: tarball },
      name: 'ifmesh',
      version: PACKAGE_VERSION,
      integrity: sha512(tarball),
      installed: false,
    });
    expect(plan.release.action).toContain('npm ci --omit=dev --offline');
    expect(plan.release_ref).toBe(`ifmesh@${PACKAGE_VERSION}`);
    expect(installedDirs(state)).toEqual([]);
  });

  it('installs it once and runs the agents and signaling from the release, which `releases` lists', async () => {
    const state = path.join(dir, 'fleet');
    states.push(state);
    const base = await freePortRange(2);
    const args = ['deploy', '--release', tarball, '--instances', '1', '--base-port', String(base)];
    const r = await cli([...args, '--nginx-port', String(await freePort()), '--json'], state);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.build).toMatchObject({
      installed: true,
      build: { version: PACKAGE_VERSION, npm_mode: 'offline', locked: true },
    });
    const build = report.build.build;
    expect(build.integrity).toBe(sha512(tarball));
    expect(build.dir).toBe(path.join(openStateDir(state).releases, build.id));
    expect(build.bin).toBe(path.join(build.dir, 'node_modules/ifmesh/dist/bin/ifmesh.js'));
    // Installed without a devDependency, its tarball kept beside it.
    expect(existsSync(path.join(build.dir, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(path.join(build.dir, path.basename(tarball)))).toBe(true);
    expect(installedDirs(state)).toEqual([build.id]);

    // Every agent and the signaling instance run the release's own entry script.
    const procs = listProcesses(openStateDir(state)).filter(
      (p) => p.role === 'agents' || p.role === 'signaling',
    );
    expect(procs.map((p) => p.name).sort()).toEqual(['deploy-agent-agent-i1', 'deploy-signaling-1']);
    for (const p of procs) expect(entryScript(p.pid), p.name).toBe(build.bin);

    // `releases`: version, source, integrity, and which processes run it.
    const rel = JSON.parse((await cli(['releases', '--json'], state)).stdout);
    expect(rel.releases[0]).toMatchObject({
      current: true,
      ref: `ifmesh@${PACKAGE_VERSION}`,
      code: {
        id: build.id,
        version: PACKAGE_VERSION,
        integrity: build.integrity,
        source: { kind: 'tarball', spec: tarball },
      },
    });
    expect(rel.installed.find((b: { id: string }) => b.id === build.id).processes).toEqual([
      'deploy-agent-agent-i1',
      'deploy-signaling-1',
    ]);

    // A canary of another build: its dry run names what it would install, and the candidate differs
    // from one without --release (another code, another config hash).
    const v2 = await packRelease(path.join(dir, 'packs'), { version: '0.2.0' });
    const plan = async (more: string[]) => {
      const r = await cli(['canary', '--dry-run', '--json', ...more], state);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout).plan.candidate;
    };
    const [same, other] = await Promise.all([plan([]), plan(['--release', v2])]);
    expect(same).toMatchObject({ code: { id: build.id, version: PACKAGE_VERSION } });
    expect(other).toMatchObject({ ref: '0.2.0', code: { version: '0.2.0', integrity: sha512(v2) } });
    expect(other.code.action).toContain('npm ci --omit=dev --offline');
    expect(other.config_hash).not.toBe(same.config_hash);

    // The same tarball again is the installed release: a deploy would use it, not install it again.
    const again = await cli([...args, '--dry-run', '--json'], state);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).plan.release).toMatchObject({
      id: build.id,
      installed: true,
      action: `use the installed ${build.dir}`,
    });
  }, 300_000);

  it('a tarball that is not a package, or a package that does not run, leaves nothing installed', async () => {
    const state = path.join(dir, 'bad');
    const garbage = path.join(dir, 'garbage.tgz');
    writeFileSync(garbage, 'not a tarball');
    const g = await cli(['deploy', '--release', garbage, '--instances', '1'], state);
    expect(g.code).toBe(1);
    expect(g.stderr).toContain('holds no readable package/package.json');
    // A package whose entry script is missing: npm installs it, the check that it runs fails.
    const pkg = path.join(dir, 'broken');
    mkdirSync(pkg);
    writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'ifmesh', version: '9.9.9' }));
    const broken = await cli(['deploy', '--release', pkg, '--instances', '1'], state);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('the installed ifmesh@9.9.9 does not run');
    expect(installedDirs(state)).toEqual([]);
    // Nothing was started either.
    expect(listProcesses(openStateDir(state))).toEqual([]);
    // A --release that names nothing installable is a usage error naming the forms.
    const label = await cli(['deploy', '--release', 'no-such-ref-xyz', '--instances', '1'], state);
    expect(label.code).toBe(2);
    expect(label.stderr).toContain('a tarball (./ifmesh-0.2.0.tgz), a directory');
  }, 120_000);
});
