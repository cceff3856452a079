// The two `--release` forms release.test.ts does not install (issue 19.1): a git ref of the checkout
// (`git archive` of the commit, built by the package's `prepare` with the checkout's dependencies,
// packed, installed) and an npm package spec fetched from a registry. One fleet is deployed from
// HEAD, then deployed again from `@ifmesh-lab/ifmesh@0.3.0`, a scoped package the operator's
// private registry serves (`NPM_CONFIG_@IFMESH-LAB:REGISTRY`, as npm reads it), while its
// dependencies come from npm's cache as for any release. Full tier: a TypeScript build and two
// installs (~2 min).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { ROOT, spawnCli, tempDir } from '../helpers/cli.js';
import { type DeployDeps, startDeployDeps, writeAgentConfigs } from '../helpers/deploy.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { entryScript, PACKAGE_VERSION, packRelease } from '../helpers/release.js';

const { dir, cleanup } = tempDir();
const state = path.join(dir, 'fleet');
let deps: DeployDeps;
let registry: Registry | undefined;
let deployed = false;

const SCOPED = '@ifmesh-lab/ifmesh';
const VERSION = '0.3.0';

/**
 * A private npm registry serving one package: the registry protocol's two reads (the packument at
 * /<name>, the tarball it names) from memory, every request recorded. It stands in for the
 * operator's registry (Verdaccio, Artifactory, GitHub Packages), which cannot run here; the client
 * is the real npm, resolving the spec as it would against any registry.
 */
interface Registry {
  url: string;
  requests: string[];
  close(): Promise<void>;
}
async function serveRegistry(tarball: string, manifest: Record<string, unknown>): Promise<Registry> {
  const bytes = readFileSync(tarball);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '');
    requests.push(url);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const file = `/${SCOPED}/-/ifmesh-${VERSION}.tgz`;
    if (url === `/${SCOPED}`) {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          name: SCOPED,
          'dist-tags': { latest: VERSION },
          versions: {
            [VERSION]: {
              ...manifest,
              dist: {
                tarball: `${base}${file}`,
                integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
                shasum: createHash('sha1').update(bytes).digest('hex'),
              },
            },
          },
        }),
      );
    } else if (url === file) {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(bytes);
    } else {
      res.statusCode = 404;
      res.end('{"error":"not found"}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.requestTimeout = 30_000;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  deps = await startDeployDeps();
  await writeAgentConfigs(dir, ['agent-g1']);
  // The scoped package: this project packed under the operator's scope, as its CI would publish it.
  const tgz = await packRelease(path.join(dir, 'packs'), {
    version: VERSION,
    patch: (pkg) => {
      const file = path.join(pkg, 'package.json');
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), name: SCOPED }));
    },
  });
  const pkg = JSON.parse(
    execFileSync('tar', ['xzf', tgz, '-O', 'package/package.json'], { encoding: 'utf8' }),
  );
  registry = await serveRegistry(tgz, pkg);
}, 180_000);
afterAll(async () => {
  if (deployed) await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 60_000 });
  await registry?.close();
  await deps?.stop();
  cleanup();
}, 120_000);

const cli = (args: string[], extra: Record<string, string> = {}) =>
  spawnCli([...args, '--state-dir', state], { cwd: dir, env: { ...deps.env, ...extra }, timeoutMs: 600_000 });
/** Entry script of each running agent and signaling instance. */
const entries = () =>
  listProcesses(openStateDir(state))
    .filter((p) => p.role === 'agents' || p.role === 'signaling')
    .map((p) => [p.name, entryScript(p.pid)]);

describe('deploy --release from git and from npm', () => {
  it('a git ref of the checkout is built, installed and run; an npm spec from a scoped registry replaces it', async () => {
    const head = execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const base = await freePortRange(2);
    const ports = ['--base-port', String(base), '--nginx-port', String(await freePort())];
    const fromGit = await cli(['deploy', '--release', 'HEAD', '--instances', '1', ...ports, '--json']);
    deployed = true;
    expect(fromGit.code, fromGit.stderr).toBe(0);
    const git = JSON.parse(fromGit.stdout).build.build;
    expect(git).toMatchObject({
      name: 'ifmesh',
      version: PACKAGE_VERSION,
      source: { kind: 'git', spec: 'HEAD', commit: head },
      // Its dependencies as its lockfile pins them, from npm's cache alone.
      locked: true,
      npm_mode: 'offline',
    });
    expect(git.bin).toBe(path.join(git.dir, 'node_modules/ifmesh/dist/bin/ifmesh.js'));
    // Built from the commit, not copied from the running checkout: the export has its own dist/.
    expect(git.bin.startsWith(ROOT)).toBe(false);
    const onGit = entries();
    expect(onGit.map(([n]) => n).sort()).toEqual(['deploy-agent-agent-g1', 'deploy-signaling-1']);
    for (const [name, bin] of onGit) expect(bin, name).toBe(git.bin);

    // The scoped package from the operator's registry.
    const spec = `${SCOPED}@${VERSION}`;
    const fromNpm = await cli(['deploy', '--release', spec, '--instances', '1', ...ports, '--json'], {
      'NPM_CONFIG_@IFMESH-LAB:REGISTRY': registry!.url,
    });
    expect(fromNpm.code, fromNpm.stderr).toBe(0);
    const npm = JSON.parse(fromNpm.stdout).build.build;
    expect(npm).toMatchObject({
      name: SCOPED,
      version: VERSION,
      source: { kind: 'npm', spec },
      locked: true,
      npm_mode: 'offline',
    });
    expect(npm.bin).toBe(path.join(npm.dir, `node_modules/${SCOPED}/dist/bin/ifmesh.js`));
    expect(registry!.requests).toContain(`/${SCOPED}`);
    expect(registry!.requests).toContain(`/${SCOPED}/-/ifmesh-${VERSION}.tgz`);
    for (const [name, bin] of entries()) expect(bin, name).toBe(npm.bin);

    // `releases` names both sources; the git build stays installed, so going back is a switch.
    const rel = JSON.parse((await cli(['releases', '--json'])).stdout);
    const byId = Object.fromEntries(rel.installed.map((b: { id: string }) => [b.id, b]));
    expect(byId[git.id]).toMatchObject({ source: { kind: 'git', commit: head }, processes: [] });
    expect(byId[npm.id]).toMatchObject({
      source: { kind: 'npm', spec },
      processes: ['deploy-agent-agent-g1', 'deploy-signaling-1'],
    });
  }, 900_000);

  it('an npm spec the registry does not have fails naming npm’s error, and installs nothing', async () => {
    const before = JSON.parse((await cli(['releases', '--json'])).stdout).installed.length;
    const r = await cli(['deploy', '--release', `${SCOPED}@9.9.9`, '--instances', '1', '--json'], {
      'NPM_CONFIG_@IFMESH-LAB:REGISTRY': registry!.url,
    });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error.message).toMatch(/npm pack of @ifmesh-lab\/ifmesh@9\.9\.9 failed/);
    expect(JSON.parse((await cli(['releases', '--json'])).stdout).installed.length).toBe(before);
  }, 300_000);
});
