// Starting a stack or a fleet needs room for what it writes at once: the witness database, every
// process's log, records and secrets. A full filesystem found up front is one clear error; found
// halfway, it is a service that "did not become healthy" with an empty log.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitCode, IfmeshError } from '../errors.js';
import type { StateDir } from './state-dir.js';

/** The least free space `up` and `deploy` start with, in MiB. */
export const MIN_FREE_MB = 64;

/** Free MiB on the filesystem that holds `dir` (or would: its nearest existing ancestor). */
export async function freeMb(dir: string): Promise<number> {
  let at = path.resolve(dir);
  for (let i = 0; i < 64 && !existsSync(at); i++) at = path.dirname(at);
  const s = await fs.statfs(at);
  return Math.floor((s.bavail * s.bsize) / 2 ** 20);
}

/** Refuses (exit 1, naming the directory and the fix) under MIN_FREE_MB free where `state` lives. */
export async function requireFreeSpace(state: StateDir, what: string): Promise<void> {
  const dir = state.root;
  const free = await freeMb(dir);
  if (free >= MIN_FREE_MB) return;
  throw new IfmeshError(
    'disk_full',
    `only ${free} MiB free where ${dir} lives; ${what} needs at least ${MIN_FREE_MB} MiB (witness database, logs, records)`,
    ExitCode.checkFailed,
    `free space there (df -h ${dir}) or pass --state-dir on a larger filesystem; nothing was started`,
  );
}
