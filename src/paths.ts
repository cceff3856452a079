import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The installed package's root (where fixtures/ lives), whether running from src/ or dist/. */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'fixtures'))) {
      root = dir;
      return dir;
    }
    dir = path.dirname(dir);
  }
  throw new Error('cannot find the ifmesh package root (package.json beside fixtures/)');
}

export function fixturePath(...parts: string[]): string {
  return path.join(packageRoot(), 'fixtures', ...parts);
}

/** The installed package's version (its package.json): what `--version` prints and releases record. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string })
    .version;
}
