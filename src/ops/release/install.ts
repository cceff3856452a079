// A release is installed code: the tarball of a `--release` source installed once, with npm, into
// <state>/releases/<id>/ (id = name-version-<sha512 prefix>), whose own entry script then runs the
// release's processes with this node. The install is atomic: npm works in a temporary directory
// under releases/ that is renamed into place only once the installed binary has answered
// `--version`; a failed or interrupted install leaves no directory that looks installed.

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { CheckFailedError } from '../../errors.js';
import { isAlive } from '../../exec/pid.js';
import { packageRoot } from '../../paths.js';
import { readStateJson, writeStateJson } from '../../state/json-file.js';
import { listProcesses, type ProcessRecord } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import type { OpContext } from '../shared.js';
import {
  integrityOf,
  integrityTag,
  npmEnv,
  obtainTarball,
  type ReleaseSource,
  resolveSource,
  type SourceKind,
  sourceManifest,
} from './source.js';

/** What a release record keeps of the installed code it runs. */
export interface BuildRef {
  id: string;
  name: string;
  version: string;
  source: { kind: SourceKind; spec: string; commit?: string };
  /** sha512 of the installed tarball, in subresource-integrity form. */
  integrity: string;
  /** The entry script its processes run with this node: <dir>/node_modules/<name>/dist/bin/ifmesh.js. */
  bin: string;
}

/** The manifest of an installed release (<state>/releases/<id>/release.json). */
export interface InstalledBuild extends BuildRef {
  dir: string;
  installed_at: string;
  /** How npm resolved the dependencies: from its cache alone, or the cache first then the registry. */
  npm_mode: 'offline' | 'prefer-offline';
  /** Installed with `npm ci` from the release's own lockfile (dist/package-lock.json), not resolved anew. */
  locked: boolean;
  /** The node the release runs with (its native modules are built for it). */
  node: string;
}

export interface InstallReport {
  build: InstalledBuild;
  /** False: the release was installed before and is used as it is. */
  installed: boolean;
  /** What npm said when --offline could not resolve every dependency from the cache. */
  offline_fallback: string | null;
}

const MANIFEST = 'release.json';
const TMP_PREFIX = '.install-';

const binOf = (dir: string, name: string) => path.join(dir, 'node_modules', name, 'dist/bin/ifmesh.js');

/** The running ifmesh's own entry script: what a process of a release without a build runs. */
export const ownBin = () => path.join(packageRoot(), 'dist/bin/ifmesh.js');

/** The entry script a recorded process runs (its launch spec's first argument), if it runs ifmesh. */
export function entryOf(rec: Pick<ProcessRecord, 'spec'>): string | undefined {
  const first = rec.spec?.args[0];
  return first?.endsWith('ifmesh.js') ? first : undefined;
}

const isBuild = (v: unknown) => {
  const b = v as Partial<InstalledBuild> | null;
  return typeof b?.id === 'string' && typeof b.bin === 'string' && typeof b.integrity === 'string';
};

export function readBuild(state: StateDir, id: string): InstalledBuild | undefined {
  return readStateJson<InstalledBuild>(
    path.join(state.releaseBuild(id), MANIFEST),
    isBuild,
    `remove ${state.releaseBuild(id)} and install the release again`,
  );
}

/** Every installed release, by id. */
export function listBuilds(state: StateDir): InstalledBuild[] {
  if (!existsSync(state.releases)) return [];
  return readdirSync(state.releases, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => readBuild(state, d.name))
    .filter((b): b is InstalledBuild => b !== undefined)
    .sort((a, b) => a.installed_at.localeCompare(b.installed_at));
}

export const buildRef = (b: InstalledBuild): BuildRef => ({
  id: b.id,
  name: b.name,
  version: b.version,
  source: b.source,
  integrity: b.integrity,
  bin: b.bin,
});

/**
 * The running ifmesh's better-sqlite3 binary, offered to prebuild-install as a local prebuild
 * (its documented `local-prebuilds` setting): a release with the same better-sqlite3 for the same
 * node installs in seconds instead of compiling it; another version compiles as npm would.
 */
async function localPrebuilds(state: StateDir, ctx: Pick<OpContext, 'exec'>): Promise<string | null> {
  let pkgDir: string;
  try {
    pkgDir = path.dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json'));
  } catch {
    return null;
  }
  const native = path.join(pkgDir, 'build/Release/better_sqlite3.node');
  if (!existsSync(native)) return null;
  const { version } = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  const dir = state.releasePrebuilds;
  const file = path.join(
    dir,
    `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`,
  );
  if (existsSync(file)) return dir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const r = await ctx.exec('tar', ['czf', tmp, '-C', pkgDir, 'build/Release/better_sqlite3.node'], {
    timeoutMs: 60_000,
  });
  if (r.code !== 0) {
    rmSync(tmp, { force: true });
    return null;
  }
  renameSync(tmp, file);
  return dir;
}

/** The lockfile a built ifmesh ships (`npm run build` copies the checkout's package-lock.json there). */
export const RELEASE_LOCK = 'dist/package-lock.json';

type LockEntry = { dev?: boolean; [k: string]: unknown };

/**
 * The install directory's package-lock.json made from the release's own lockfile: the release at
 * node_modules/<name> (its tarball, by integrity) and its runtime dependencies where its lockfile
 * puts them (hoisted to node_modules/, where node finds them from the release), devDependencies
 * left out. Null when the tarball ships no readable lockfile: npm then resolves as `npm install`.
 */
async function releaseLock(
  tarball: string,
  file: string,
  integrity: string,
  dependencies: Record<string, string>,
  ctx: Pick<OpContext, 'exec'>,
): Promise<object | null> {
  const r = await ctx.exec('tar', ['xzf', tarball, '-O', `package/${RELEASE_LOCK}`], { timeoutMs: 60_000 });
  if (r.code !== 0) return null;
  let lock: { lockfileVersion?: number; packages?: Record<string, LockEntry> };
  try {
    lock = JSON.parse(r.stdout);
  } catch {
    return null;
  }
  const own = lock.packages?.[''];
  if (!own || (lock.lockfileVersion ?? 0) < 2) return null;
  const [name] = Object.keys(dependencies) as [string];
  const packages: Record<string, LockEntry> = {
    '': { name: 'release', dependencies },
    [`node_modules/${name}`]: {
      version: own.version,
      resolved: `file:${file}`,
      integrity,
      ...(own.dependencies ? { dependencies: own.dependencies } : {}),
      ...(own.optionalDependencies ? { optionalDependencies: own.optionalDependencies } : {}),
      ...(own.bin ? { bin: own.bin } : {}),
      ...(own.engines ? { engines: own.engines } : {}),
    },
  };
  for (const [key, entry] of Object.entries(lock.packages!))
    if (key.startsWith('node_modules/') && !entry.dev && key !== `node_modules/${name}`)
      packages[key] = entry;
  return { name: 'release', lockfileVersion: 3, requires: true, packages };
}

/** Temporary install directories whose installer is gone (killed mid-install): removed. */
function sweepAbandoned(state: StateDir): void {
  if (!existsSync(state.releases)) return;
  for (const d of readdirSync(state.releases)) {
    const m = /^\.install-.*-(\d+)(\.npm-tmp)?$/.exec(d);
    if (m && !isAlive(Number(m[1]))) rmSync(path.join(state.releases, d), { recursive: true, force: true });
  }
}

const tail = (r: { stdout: string; stderr: string }) =>
  `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-15).join('\n');

/**
 * Installs the release `spec` names (resolved and packed as source.ts says) into
 * <state>/releases/<id>/, unless a release with the same integrity is installed already.
 */
export async function installRelease(
  state: StateDir,
  spec: string,
  ctx: Pick<OpContext, 'exec' | 'env' | 'cwd' | 'clock'>,
): Promise<InstallReport> {
  const source = await resolveSource(spec, ctx.cwd, ctx);
  mkdirSync(state.releases, { recursive: true, mode: 0o700 });
  sweepAbandoned(state);
  const tmp = path.join(state.releases, `${TMP_PREFIX}${Date.now().toString(36)}-${process.pid}`);
  mkdirSync(tmp, { mode: 0o700 });
  const cleanup = [tmp];
  try {
    const tarball = await obtainTarball(source, path.join(tmp, 'pack'), ctx);
    const integrity = integrityOf(tarball);
    const manifest = await sourceManifest({ kind: 'tarball', spec, path: tarball }, ctx);
    if (!manifest)
      throw new CheckFailedError(
        `--release ${spec}: ${path.basename(tarball)} holds no readable package/package.json`,
        'give a tarball made by `npm pack`',
        'release_invalid',
      );
    const id = `${manifest.name.replace(/^@/, '').replace(/\//g, '-')}-${manifest.version}-${integrityTag(integrity)}`;
    const existing = readBuild(state, id);
    if (existing && existing.integrity === integrity)
      return { build: existing, installed: false, offline_fallback: null };
    const dir = state.releaseBuild(id);
    const file = path.basename(tarball);
    copyFileSync(tarball, path.join(tmp, file));
    rmSync(path.join(tmp, 'pack'), { recursive: true, force: true });
    const dependencies = { [manifest.name]: `file:./${file}` };
    writeStateJson(
      path.join(tmp, 'package.json'),
      { name: `release-${id}`, private: true, dependencies },
      0o600,
    );
    // The release's own lockfile, when it ships one: `npm ci` installs exactly the dependency tree
    // it was built and tested with, from npm's cache by integrity (no registry metadata needed).
    const lock = await releaseLock(path.join(tmp, file), file, integrity, dependencies, ctx);
    if (lock) writeStateJson(path.join(tmp, 'package-lock.json'), lock, 0o600);
    const prebuilds = await localPrebuilds(state, ctx);
    const npmTmp = path.join(state.releases, `${path.basename(tmp)}.npm-tmp`);
    mkdirSync(npmTmp, { mode: 0o700 });
    cleanup.push(npmTmp);
    const verb = lock ? 'ci' : 'install';
    const npm = (mode: 'offline' | 'prefer-offline') =>
      ctx.exec('npm', [verb, '--omit=dev', `--${mode}`, '--no-audit', '--no-fund', '--loglevel=warn'], {
        timeoutMs: 900_000,
        cwd: tmp,
        env: npmEnv(ctx.env, {
          TMPDIR: npmTmp,
          ...(prebuilds ? { npm_config_better_sqlite3_local_prebuilds: prebuilds } : {}),
        }),
      });
    let mode: InstalledBuild['npm_mode'] = 'offline';
    let fallback: string | null = null;
    let r = await npm('offline');
    if (r.code !== 0 && /ENOTCACHED/.test(r.stderr)) {
      // A dependency missing from the cache: npm may fetch what is missing, and the report says so.
      fallback =
        tail(r)
          .split('\n')
          .find((l) => /ENOTCACHED|request to/.test(l)) ?? 'ENOTCACHED';
      mode = 'prefer-offline';
      rmSync(path.join(tmp, 'node_modules'), { recursive: true, force: true });
      r = await npm('prefer-offline');
    }
    if (r.code !== 0)
      throw new CheckFailedError(
        `npm install of ${spec} failed (exit ${r.code}):\n${tail(r)}`,
        "see npm's message above; nothing was installed",
        'release_install_failed',
      );
    const bin = binOf(dir, manifest.name);
    // The installed binary must run before the release counts as installed.
    const v = await ctx.exec(process.execPath, [binOf(tmp, manifest.name), '--version'], {
      timeoutMs: 60_000,
      cwd: tmp,
    });
    if (v.code !== 0 || v.stdout.trim() !== manifest.version)
      throw new CheckFailedError(
        `the installed ${manifest.name}@${manifest.version} does not run: \`ifmesh --version\` ${v.code !== 0 ? `exited ${v.code}` : `said ${v.stdout.trim()}`}\n${tail(v)}`,
        'a release must be a built ifmesh package (dist/bin/ifmesh.js)',
        'release_install_failed',
      );
    const build: InstalledBuild = {
      locked: lock !== null,
      id,
      name: manifest.name,
      version: manifest.version,
      source: {
        kind: source.kind,
        spec: source.kind === 'tarball' || source.kind === 'directory' ? source.path! : spec,
        ...(source.commit ? { commit: source.commit } : {}),
      },
      integrity,
      bin,
      dir,
      installed_at: new Date(ctx.clock.now()).toISOString(),
      npm_mode: mode,
      node: process.execPath,
    };
    writeStateJson(path.join(tmp, MANIFEST), build, 0o600);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Installed meanwhile by another run: that one is used.
      const other = readBuild(state, id);
      if (other?.integrity === integrity) return { build: other, installed: false, offline_fallback: null };
      throw err;
    }
    return { build, installed: true, offline_fallback: fallback };
  } finally {
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  }
}

/** installRelease for a command: none without `spec`; progress lines before and after. */
export async function installWithProgress(
  state: StateDir,
  spec: string | undefined,
  progress: Progress,
  ctx: Pick<OpContext, 'exec' | 'env' | 'cwd' | 'clock'>,
): Promise<InstallReport | null> {
  if (!spec) return null;
  progress.step('release', 'running', `installing ${spec}`);
  const r = await installRelease(state, spec, ctx);
  const b = r.build;
  progress.step(
    'release',
    'ok',
    `${b.name}@${b.version} ${r.installed ? 'installed in' : 'already installed in'} ${b.dir}${r.offline_fallback ? ` (not all in npm's cache: ${r.offline_fallback})` : ''}`,
  );
  return r;
}

export interface SourcePreview {
  source: ReleaseSource;
  name: string | null;
  version: string | null;
  /** Known for a tarball only: the others are packed first. */
  integrity: string | null;
  id: string | null;
  installed: boolean;
  /** What would be done: "install into …", "use the installed …", "pack … then install". */
  action: string;
}

/** The dry run's view of `--release spec`: what would be packed and installed, touching nothing. */
export async function previewRelease(
  state: StateDir,
  spec: string,
  ctx: Pick<OpContext, 'exec' | 'cwd'>,
): Promise<SourcePreview> {
  const source = await resolveSource(spec, ctx.cwd, ctx);
  const manifest = await sourceManifest(source, ctx);
  const integrity = source.kind === 'tarball' ? integrityOf(source.path!) : null;
  const id =
    manifest && integrity
      ? `${manifest.name.replace(/^@/, '').replace(/\//g, '-')}-${manifest.version}-${integrityTag(integrity)}`
      : null;
  const installed = id !== null && readBuild(state, id)?.integrity === integrity;
  const pack =
    source.kind === 'directory'
      ? `npm pack ${source.path}, then `
      : source.kind === 'git'
        ? `git archive ${source.commit!.slice(0, 12)} and npm pack it, then `
        : source.kind === 'npm'
          ? `npm pack ${spec} (cache first), then `
          : '';
  return {
    source,
    name: manifest?.name ?? null,
    version: manifest?.version ?? null,
    integrity,
    id,
    installed,
    action: installed
      ? `use the installed ${state.releaseBuild(id!)}`
      : `${pack}npm ci --omit=dev --offline (from its ${RELEASE_LOCK}; npm install without one) into ${id ? state.releaseBuild(id) : `${state.releases}/<id>`}`,
  };
}

/**
 * Installed releases no kept record, running process or live canary refers to: removed, so the
 * last N releases (recordRelease's `keep`) stay installed and rollback is a switch.
 */
export function pruneBuilds(state: StateDir, keepIds: Set<string>): string[] {
  const running = new Set(
    listProcesses(state)
      .filter((p) => isAlive(p.pid))
      .map(entryOf)
      .filter((b): b is string => b !== undefined),
  );
  const removed: string[] = [];
  for (const b of listBuilds(state)) {
    if (keepIds.has(b.id) || running.has(b.bin)) continue;
    rmSync(b.dir, { recursive: true, force: true });
    removed.push(b.id);
  }
  return removed;
}
