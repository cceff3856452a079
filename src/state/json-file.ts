// How every state file is read and written: written whole (a temp file, fsync, rename, then fsync
// of the directory), so a crash leaves the old file or the new one, never half; read strictly, so a
// file that no longer parses is an error naming the file and the fix, never "nothing recorded".
import {
  accessSync,
  chownSync,
  closeSync,
  constants,
  existsSync,
  fchownSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { StateCorruptError, StateWriteError } from '../errors.js';

export function writeStateJson(file: string, value: unknown, mode = 0o644): void {
  writeFileWhole(file, `${JSON.stringify(value, null, 2)}\n`, mode);
}

/**
 * Writes `text` to `file` whole: a temp file, fsync, rename over the file, then fsync of its
 * directory. A failure (disk full, read-only, permissions) removes the temp file and is a
 * StateWriteError naming the file; the file keeps what it held.
 */
export function writeFileWhole(file: string, text: string, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirOwned(path.dirname(file));
    const fd = openSync(tmp, 'w', mode);
    try {
      const owner = ownerFor(file);
      if (owner) fchownSync(fd, owner.uid, owner.gid);
      // writeFileSync on a descriptor loops until every byte is written: a bare writeSync may write
      // part of it on a nearly full disk and return the short count.
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // the filesystem went read-only under us: the error below is the one to name
    }
    throw new StateWriteError(file, whyUnwritable(file, err));
  }
  try {
    const dir = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // a directory fsync is not possible everywhere; the rename is still atomic
  }
}

/**
 * Who a state file written by root should belong to: the owner of the file it replaces, else of its
 * directory. A state dir handed to the services' user (`ifmesh systemd install`) stays theirs when
 * the root CLI rewrites a record or a secret they read. undefined: keep the writer's.
 */
function ownerFor(file: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const st = statSync(existsSync(file) ? file : path.dirname(file));
    return st.uid === 0 && st.gid === 0 ? undefined : { uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  }
}

/** mkdir -p whose new directories belong to the owner of the first one that existed (see ownerFor). */
export function mkdirOwned(dir: string): void {
  const first = mkdirSync(dir, { recursive: true });
  if (!first) return;
  const owner = ownerFor(path.dirname(first));
  if (!owner) return;
  for (let d = dir; d.length >= first.length; d = path.dirname(d)) chownSync(d, owner.uid, owner.gid);
}

/**
 * The parsed file, or undefined when it does not exist. Unparsable, or not what `valid` expects: a
 * StateCorruptError naming the file, with `fix` as its hint.
 */
export function readStateJson<T>(file: string, valid: (v: unknown) => boolean, fix: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (valid(v)) return v as T;
  } catch {
    // reported below
  }
  throw new StateCorruptError(file, fix);
}

/**
 * The cause to name for a failed write. Some failures hide the real one: a recursive mkdir on a
 * read-only filesystem says ENOENT. Asking the nearest existing directory (access(2) W_OK answers
 * EROFS or EACCES even for root) names it.
 */
export function whyUnwritable(file: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EROFS' || code === 'EACCES' || code === 'EPERM' || code === 'EDQUOT')
    return err;
  let at = path.dirname(file);
  for (let i = 0; i < 64 && !existsSync(at); i++) at = path.dirname(at);
  try {
    accessSync(at, constants.W_OK);
    return err;
  } catch (probe) {
    return probe;
  }
}

/** A state file that no longer parses, as a view names it instead of failing on it. */
export interface UnreadableFile {
  /** Its name without `.json` (a process's name, an incident's id). */
  name: string;
  file: string;
  error: string;
  fix: string;
}

/**
 * Every `.json` file of `dir`, in name order, read by `read`: those that read, and those that no
 * longer parse (StateCorruptError), so one torn file does not hide the others from a view.
 */
export function scanStateFiles<T>(
  dir: string,
  read: (name: string, file: string) => T | undefined,
): { records: T[]; unreadable: UnreadableFile[] } {
  const records: T[] = [];
  const unreadable: UnreadableFile[] = [];
  if (!existsSync(dir)) return { records, unreadable };
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const name = f.slice(0, -'.json'.length);
    try {
      const r = read(name, path.join(dir, f));
      if (r !== undefined) records.push(r);
    } catch (err) {
      if (!(err instanceof StateCorruptError)) throw err;
      unreadable.push({ name, ...describeCorrupt(err) });
    }
  }
  return { records, unreadable };
}

/** What a view shows of a state file that no longer parses: the file, the error, the fix. */
export function describeCorrupt(err: StateCorruptError): Omit<UnreadableFile, 'name'> {
  return { file: err.file, error: err.message, fix: err.hint ?? '' };
}

/** A scan's records, or the first unreadable file's error: for what must not go on without them. */
export function allRecords<T>(scan: { records: T[]; unreadable: UnreadableFile[] }): T[] {
  const first = scan.unreadable[0];
  if (first) throw new StateCorruptError(first.file, first.fix);
  return scan.records;
}
