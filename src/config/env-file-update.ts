// Changing one key of an env file in place, the way an operator's `sed -i` would, but safely: the
// rest of the file is kept byte for byte (comments, order, other keys), the old file is kept as
// `<file>.bak-<time>`, and the new one replaces it whole (temp file, fsync, rename, directory
// fsync, the file's mode kept), so a crash leaves the old file or the new one and never half.
import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { writeFileWhole } from '../state/json-file.js';
import { parseEnvFile } from './env-file.js';

export interface EnvFileUpdate {
  file: string;
  key: string;
  /** The value before (undefined: the key was not in the file and was appended). */
  previous: string | undefined;
  value: string;
  backup: string;
  /** False when the file already said exactly this: nothing written, no backup made. */
  changed: boolean;
}

/** A value as the parser reads it back: bare when it can be, double-quoted otherwise. */
function quote(value: string): string {
  if (/^[^\s"'#\\]*$/.test(value)) return value;
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** 20261122T214437Z: sortable, and free of the ':' some tools choke on in file names. */
export const backupStamp = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

export function setEnvFileKey(file: string, key: string, value: string, now: number): EnvFileUpdate {
  const text = readFileSync(file, 'utf8');
  const parsed = parseEnvFile(text, file);
  const entry = parsed.entries.get(key);
  const backup = `${file}.bak-${backupStamp(now)}`;
  if (entry?.value === value) return { file, key, previous: value, value, backup, changed: false };
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text.split(/\r?\n/);
  if (entry) {
    const old = lines[entry.line - 1]!;
    const indent = /^\s*(export\s+)?/.exec(old)![0];
    lines[entry.line - 1] = `${indent}${key}=${quote(value)}`;
  } else {
    // Appended before the final newline, so the file still ends with one.
    if (lines.at(-1) === '') lines.pop();
    lines.push(`${key}=${quote(value)}`, '');
  }
  const next = lines.join(eol);
  // The value must read back as written, or nothing is replaced.
  if (parseEnvFile(next, file).entries.get(key)?.value !== value)
    throw new Error(`${file}: ${key} would not read back as written`);
  const mode = statSync(file).mode & 0o777;
  copyFileSync(file, backup);
  writeFileWhole(file, next, mode);
  return { file, key, previous: entry?.value, value, backup, changed: true };
}
