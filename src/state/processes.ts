// The process list of a state directory: one record per process ifmesh started (up, deploy, and
// whatever starts processes next), each with its role, so `status` and `down` see them all alike and
// never guess a role from a name.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { statePaths } from './state-dir.js';

/** What a process is for; decides the order `down` stops it in. */
export type ProcessRole =
  | 'agents'
  | 'nginx'
  | 'signaling'
  | 'coturn'
  | 'redis'
  | 'postgres'
  | 'prometheus'
  | 'witness';

export interface ProcessRecord {
  name: string;
  role: ProcessRole;
  pid: number;
  /** ISO time the process was started (or adopted). */
  started_at: string;
  /** What started it: `up`, `deploy`, … */
  owner: string;
  port?: number;
  url?: string;
}

/** Records (or replaces) a process; written whole (tmp + rename), so a reader never sees half. */
export function recordProcess(stateDir: string, rec: ProcessRecord): void {
  const p = statePaths(stateDir);
  mkdirSync(p.run, { recursive: true });
  const file = p.processFile(rec.name);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(rec, null, 2)}\n`);
  renameSync(tmp, file);
}

export function readProcess(stateDir: string, name: string): ProcessRecord | undefined {
  try {
    return JSON.parse(readFileSync(statePaths(stateDir).processFile(name), 'utf8')) as ProcessRecord;
  } catch {
    return undefined;
  }
}

/** Every recorded process, running or not, by name. */
export function listProcesses(stateDir: string): ProcessRecord[] {
  const dir = statePaths(stateDir).run;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => readProcess(stateDir, path.basename(f, '.json')))
    .filter((r): r is ProcessRecord => r !== undefined);
}

export function forgetProcess(stateDir: string, name: string): void {
  rmSync(statePaths(stateDir).processFile(name), { force: true });
}

/**
 * The order `down` stops processes in: agents first (they say goodbye through signaling), then the
 * services they used, all at once since none needs another to stop, the witness last so it records
 * every departure, then the database it may write to.
 */
export const STOP_TIERS: ProcessRole[][] = [
  ['agents'],
  ['nginx', 'signaling', 'coturn', 'redis', 'prometheus'],
  ['witness'],
  // After the witness, whose last signed checkpoint goes into it (`up --witness-db postgres`).
  ['postgres'],
];
