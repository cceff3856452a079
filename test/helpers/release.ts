// Releases of this project as a user packs them: the built package (dist/ that global setup built,
// fixtures, the prepare script, package.json) copied, optionally changed (another version, a
// deliberate fault in its dist/), and packed with `npm pack`, whose `prepare` finds no TypeScript
// and ships the built dist/.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './cli.js';
import { trackPid } from './pids.js';

export const PACKAGE_VERSION = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

/** The environment without the npm_* variables `npm test` exports, so nested npm runs are a user's. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/**
 * Packs the project into `dir` as version `version` (default: this one), after `patch` changed the
 * copy (paths relative to the package root); returns the tarball's path.
 */
export async function packRelease(
  dir: string,
  o: { version?: string; patch?: (pkgDir: string) => void } = {},
): Promise<string> {
  const version = o.version ?? PACKAGE_VERSION;
  const pkg = path.join(dir, `pkg-${version}`);
  mkdirSync(pkg, { recursive: true });
  for (const entry of [
    'dist/bin',
    'dist/commands',
    'dist/src',
    'dist/package-lock.json',
    'fixtures',
    'scripts/prepare.mjs',
    'README.md',
    'docs',
  ])
    cpSync(path.join(ROOT, entry), path.join(pkg, entry), { recursive: true });
  const json = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  writeFileSync(path.join(pkg, 'package.json'), `${JSON.stringify({ ...json, version }, null, 2)}\n`);
  o.patch?.(pkg);
  const npmTmp = path.join(dir, 'npm-tmp');
  mkdirSync(npmTmp, { recursive: true });
  const out = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      'npm',
      ['pack', '--pack-destination', dir, '--prefer-offline', '--silent'],
      { cwd: pkg, env: cleanEnv({ TMPDIR: npmTmp }), timeout: 120_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`npm pack: ${err.message}\n${stderr}`)) : resolve(stdout),
    );
    trackPid(child.pid);
  });
  const file = out.trim().split('\n').at(-1)!;
  return path.join(dir, file);
}

/** A release whose agents sign their messages under another domain: every peer rejects them. */
export function wrongSignatureDomain(pkgDir: string): void {
  const file = path.join(pkgDir, 'dist/src/protocol/ifmessage.js');
  const text = readFileSync(file, 'utf8');
  const patched = text.replace("'ifmesh/IFMessage/v1'", "'ifmesh/IFMessage/v1-faulty'");
  if (patched === text)
    throw new Error(`${file}: the signature domain is no longer spelled as this fault expects`);
  writeFileSync(file, patched);
}

/** The entry script a process runs, from its command line (/proc/<pid>/cmdline). */
export function entryScript(pid: number): string | undefined {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    .split('\0')
    .find((a) => a.endsWith('ifmesh.js'));
}
