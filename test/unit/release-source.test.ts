// What `--release SOURCE` names (src/ops/release/source.ts), and which installed releases are kept.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveSource } from '../../src/ops/release/source.js';
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
