// What `--release SOURCE` names (src/ops/release/source.ts), and which installed releases are kept.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Release, recordRelease } from '../../src/ops/deploy/releases.js';
import { listBuilds } from '../../src/ops/release/install.js';
import { resolveSource } from '../../src/ops/release/source.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemExec } from '../../src/util/exec.js';
import { tempDir } from '../helpers/cli.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const ctx = { exec: systemExec };

describe('resolveSource', () => {
  it('tells tarballs, directories, npm specs and git refs of the checkout apart', async () => {
    writeFileSync(path.join(dir, 'ifmesh-0.2.0.tgz'), '');
    mkdirSync(path.join(dir, 'pkg'));
    writeFileSync(path.join(dir, 'pkg/package.json'), '{}');
    expect(await resolveSource('./ifmesh-0.2.0.tgz', dir, ctx)).toEqual({
      kind: 'tarball',
      spec: './ifmesh-0.2.0.tgz',
      path: path.join(dir, 'ifmesh-0.2.0.tgz'),
    });
    expect(await resolveSource('pkg', dir, ctx)).toMatchObject({
      kind: 'directory',
      path: path.join(dir, 'pkg'),
    });
    for (const spec of ['ifmesh@0.2.0', '@acme/ifmesh@^1', 'npm:ifmesh@latest'])
      expect(await resolveSource(spec, dir, ctx), spec).toEqual({ kind: 'npm', spec });
    // This tree is a git checkout: HEAD is a ref of it, resolved to its commit.
    const head = await resolveSource('HEAD', dir, ctx);
    expect(head).toMatchObject({ kind: 'git', spec: 'HEAD' });
    expect(head.commit).toMatch(/^[0-9a-f]{40}$/);
  });

  it('refuses what names nothing installable, naming the forms (exit 2)', async () => {
    await expect(resolveSource('./missing-1.0.0.tgz', dir, ctx)).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('no such tarball'),
    });
    mkdirSync(path.join(dir, 'empty'));
    await expect(resolveSource('empty', dir, ctx)).rejects.toMatchObject({ exitCode: 2 });
    for (const label of ['v-no-such-tag-xyz', 'ifmesh', '--force'])
      await expect(resolveSource(label, dir, ctx), label).rejects.toMatchObject({
        code: 'release_unknown',
        exitCode: 2,
      });
  });
});

describe('kept releases', () => {
  it('the installed code of the records kept stays; the rest is removed with its records', async () => {
    const state = openStateDir(path.join(dir, 'state'));
    const build = (id: string) => {
      mkdirSync(state.releaseBuild(id), { recursive: true });
      const b = {
        id,
        name: 'ifmesh',
        version: id,
        source: { kind: 'tarball' as const, spec: `/x/${id}.tgz` },
        integrity: `sha512-${id}`,
        bin: path.join(state.releaseBuild(id), 'node_modules/ifmesh/dist/bin/ifmesh.js'),
      };
      writeFileSync(
        path.join(state.releaseBuild(id), 'release.json'),
        JSON.stringify({
          ...b,
          dir: state.releaseBuild(id),
          installed_at: `2026-01-0${id.length}`,
          npm_mode: 'offline',
          node: 'node',
        }),
      );
      return b;
    };
    const record = (id: string, b: ReturnType<typeof build>): Release => ({
      id,
      deployment_id: id,
      ref: b.version,
      config_hash: 'h',
      created_at: `2026-01-01T00:00:0${id.length}Z`,
      processes: [],
      agents: [],
      agent_specs: [],
      build: b,
    });
    const v1 = build('v1');
    const stray = build('stray');
    await recordRelease(state, record('r1', v1));
    // Code no kept record names and no process runs is removed at once.
    expect(listBuilds(state).map((b) => b.id)).toEqual(['v1']);
    expect(existsSync(state.releaseBuild(stray.id))).toBe(false);
    const v22 = build('v22');
    // keep 1: r1's record goes, and v1's code with it; v22 is r22's.
    await recordRelease(state, record('r22', v22), 1);
    expect(listBuilds(state).map((b) => b.id)).toEqual(['v22']);
    expect(existsSync(state.releaseBuild('v1'))).toBe(false);
  });
});
