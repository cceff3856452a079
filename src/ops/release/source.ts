// What `--release SOURCE` names, and how it becomes one npm tarball: a tarball as is, a local
// directory packed (`npm pack`, whose `prepare` builds it), a git ref of the ifmesh checkout
// exported (`git archive`) and packed, or an npm package spec fetched (`npm pack SPEC`). Every
// source ends as a tarball, so a release is identified by the sha512 of the bytes installed.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { CheckFailedError, UsageError } from '../../errors.js';
import { packageRoot } from '../../paths.js';
import type { OpContext } from '../shared.js';

export type SourceKind = 'tarball' | 'directory' | 'git' | 'npm';

export interface ReleaseSource {
  kind: SourceKind;
  /** As the operator gave it. */
  spec: string;
  /** The absolute path of a tarball or directory. */
  path?: string;
  /** A git ref's commit, and the checkout it is in. */
  commit?: string;
  repo?: string;
}

const TARBALL = /\.(tgz|tar\.gz)$/;
// name@range, @scope/name@range, or npm:… (an npm spec without a version is a package name, and a
// bare word is too ambiguous with a tag: it must carry its @version).
const NPM_SPEC = /^(npm:.+|(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*@[^\s/]+)$/i;

export const SOURCE_FORMS =
  'a tarball (./ifmesh-0.2.0.tgz), a directory holding the ifmesh package, a git ref of the ifmesh checkout (v0.2.0, a branch or commit), or an npm package spec (ifmesh@0.2.0)';

/** The git checkout ifmesh runs from, when it runs from one. */
export function checkoutOf(root = packageRoot()): string | undefined {
  return existsSync(path.join(root, '.git')) ? root : undefined;
}

const exec = (ctx: Pick<OpContext, 'exec'>, file: string, args: string[], cwd?: string, timeoutMs = 60_000) =>
  ctx.exec(file, args, { timeoutMs, ...(cwd ? { cwd } : {}) }).catch((err: Error) => {
    throw new CheckFailedError(`${file} could not be run: ${err.message}`, `install ${file}`);
  });

/** Which kind of source `spec` is; a usage error naming the accepted forms when it is none. */
export async function resolveSource(
  spec: string,
  cwd: string,
  ctx: Pick<OpContext, 'exec'>,
): Promise<ReleaseSource> {
  const abs = path.resolve(cwd, spec);
  if (TARBALL.test(spec)) {
    if (!existsSync(abs) || !statSync(abs).isFile())
      throw new UsageError(`--release ${spec}: no such tarball (${abs})`, 'pack one with `npm pack`');
    return { kind: 'tarball', spec, path: abs };
  }
  if (existsSync(abs) && statSync(abs).isDirectory()) {
    if (!existsSync(path.join(abs, 'package.json')))
      throw new UsageError(`--release ${spec}: ${abs} holds no package.json`, SOURCE_FORMS);
    return { kind: 'directory', spec, path: abs };
  }
  if (NPM_SPEC.test(spec)) return { kind: 'npm', spec };
  const repo = checkoutOf();
  if (repo && /^[\w./~^@{}-]+$/.test(spec) && !spec.startsWith('-')) {
    const r = await exec(
      ctx,
      'git',
      ['-C', repo, 'rev-parse', '--verify', '--quiet', `${spec}^{commit}`],
      repo,
    );
    if (r.code === 0) return { kind: 'git', spec, commit: r.stdout.trim(), repo };
  }
  throw new UsageError(
    `--release ${spec}: not a tarball, a directory, ${repo ? 'a git ref of the checkout' : 'a git ref (ifmesh does not run from a git checkout)'} or an npm spec`,
    `give ${SOURCE_FORMS}; without --release the running ifmesh's own code is deployed`,
    'release_unknown',
  );
}

/** The package.json a source would install, read without installing it (the dry run's view). */
export async function sourceManifest(
  s: ReleaseSource,
  ctx: Pick<OpContext, 'exec'>,
): Promise<{ name: string; version: string } | null> {
  let text: string | null = null;
  if (s.kind === 'tarball') {
    const r = await exec(ctx, 'tar', ['xzf', s.path!, '-O', 'package/package.json']);
    text = r.code === 0 ? r.stdout : null;
  } else if (s.kind === 'directory') text = readFileSync(path.join(s.path!, 'package.json'), 'utf8');
  else if (s.kind === 'git') {
    const r = await exec(ctx, 'git', ['-C', s.repo!, 'show', `${s.commit}:package.json`]);
    text = r.code === 0 ? r.stdout : null;
  }
  if (text === null) return null;
  try {
    const p = JSON.parse(text) as { name?: unknown; version?: unknown };
    return typeof p.name === 'string' && typeof p.version === 'string'
      ? { name: p.name, version: p.version }
      : null;
  } catch {
    return null;
  }
}

/** Subresource-integrity form (as npm's lockfile writes it): sha512-<base64>. */
export function integrityOf(file: string): string {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/** A short, path-safe digest of an integrity string, for a release's directory name. */
export function integrityTag(integrity: string): string {
  return Buffer.from(integrity.replace(/^sha512-/, ''), 'base64')
    .toString('hex')
    .slice(0, 12);
}

/**
 * The environment npm runs in: the same node first on the PATH (install scripts build for it),
 * without the lower-case npm_* variables an enclosing `npm run`/`npx` exports (its lifecycle,
 * package and config of that run), but with the operator's own upper-case NPM_CONFIG_* settings —
 * a private registry for a scope (`NPM_CONFIG_@ACME:REGISTRY=https://npm.acme.example/`), a cache,
 * a user config — which npm reads as it would from .npmrc.
 */
export function npmEnv(
  env: Record<string, string | undefined>,
  extra: Record<string, string> = {},
): Record<string, string | undefined> {
  const clean = Object.fromEntries(
    Object.entries(env).filter(([k]) => !/^npm_/i.test(k) || k.startsWith('NPM_CONFIG_')),
  );
  return {
    ...clean,
    PATH: [path.dirname(process.execPath), env.PATH ?? ''].filter(Boolean).join(path.delimiter),
    ...extra,
  };
}

function packed(dest: string, before: Set<string>, what: string, out: { stdout: string; stderr: string }) {
  const made = readdirSync(dest).filter((f) => TARBALL.test(f) && !before.has(f));
  if (made.length !== 1)
    throw new CheckFailedError(
      `npm pack of ${what} made no tarball:\n${`${out.stdout}\n${out.stderr}`.trim().split('\n').slice(-15).join('\n')}`,
      'fix the package so that `npm pack` succeeds in it',
      'release_pack_failed',
    );
  return path.join(dest, made[0]!);
}

/**
 * The source as one tarball in `work` (a directory the caller removes): a tarball is used where it
 * is; a directory or a git ref is packed (`prepare` builds it: with the checkout's node_modules for
 * a git ref, whose export has none); an npm spec is fetched from the cache or the registry.
 */
export async function obtainTarball(
  s: ReleaseSource,
  work: string,
  ctx: Pick<OpContext, 'exec' | 'env'>,
): Promise<string> {
  if (s.kind === 'tarball') return s.path!;
  mkdirSync(work, { recursive: true });
  // npm's own temporary files stay in the work directory the caller removes.
  const npmTmp = path.join(work, '.npm-tmp');
  mkdirSync(npmTmp);
  const before = new Set(readdirSync(work));
  const pack = async (args: string[], cwd: string, what: string) => {
    const r = await ctx.exec('npm', ['pack', ...args, '--pack-destination', work, '--prefer-offline'], {
      timeoutMs: 600_000,
      cwd,
      env: npmEnv(ctx.env, { TMPDIR: npmTmp }),
    });
    if (r.code !== 0)
      throw new CheckFailedError(
        `npm pack of ${what} failed (exit ${r.code}):\n${r.stderr.trim().split('\n').slice(-15).join('\n')}`,
        'fix the package so that `npm pack` succeeds in it',
        'release_pack_failed',
      );
    return packed(work, before, what, r);
  };
  if (s.kind === 'directory') return pack([], s.path!, s.path!);
  if (s.kind === 'npm') return pack([s.spec], work, s.spec);
  // git: the ref's tree, exported; built with the checkout's dependencies (TypeScript is a devDependency).
  const tree = path.join(work, 'tree');
  mkdirSync(tree);
  const archive = path.join(work, 'tree.tar');
  const a = await exec(ctx, 'git', ['-C', s.repo!, 'archive', '--format=tar', '-o', archive, s.commit!]);
  if (a.code !== 0) throw new CheckFailedError(`git archive ${s.commit} failed: ${a.stderr.trim()}`);
  const x = await exec(ctx, 'tar', ['xf', archive, '-C', tree]);
  if (x.code !== 0) throw new CheckFailedError(`extracting ${s.spec} failed: ${x.stderr.trim()}`);
  const deps = path.join(s.repo!, 'node_modules');
  if (existsSync(deps)) symlinkSync(deps, path.join(tree, 'node_modules'));
  return pack([], tree, `${s.spec} (${s.commit!.slice(0, 12)})`);
}
