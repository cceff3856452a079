// The process list of a state directory: one record per process ifmesh started (up, deploy, and
// whatever starts processes next), each with its role, so `status` and `down` see them all alike and
// never guess a role from a name.
import { readFileSync, rmSync } from 'node:fs';
import { StateCorruptError } from '../errors.js';
import {
  allRecords,
  readStateJson,
  scanStateFiles,
  type UnreadableFile,
  writeStateJson,
} from './json-file.js';
import type { StateDir } from './state-dir.js';

/** What a process is for; decides the order `down` stops it in. */
export type ProcessRole =
  | 'agents'
  | 'nginx'
  | 'signaling'
  | 'coturn'
  | 'redis'
  | 'postgres'
  | 'prometheus'
  | 'witness'
  /** `ifmesh supervise`: restarts the state's services when they die (src/ops/fleet/watchdog.ts). */
  | 'supervisor';

/**
 * How a process was launched, so it is restarted exactly so (never reconstructed, never read back
 * from /proc): command, arguments, working directory (a relative env file resolves there again),
 * the non-secret environment it was given and the NAMES of its secret keys, whose values live in
 * the secrets file (src/state/secrets.ts).
 */
export interface LaunchSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  secret_env: string[];
}

/** What tells that a running process answers as its role should. */
export type HealthProbe =
  | { kind: 'http'; url: string }
  | { kind: 'tcp'; port: number }
  | { kind: 'redis'; url: string }
  | { kind: 'none' };

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
  /** How it was launched; absent for adopted daemons (nginx, PostgreSQL), which are not restarted. */
  spec?: LaunchSpec;
  /** Kept running by the state's supervisor (`ifmesh supervise`) when it dies. */
  supervised?: boolean;
  /**
   * What runs it: absent or `local` for a detached process of ifmesh's own (stopped by pid), or
   * `systemd` for a unit (`unit`), started, stopped and asked about through systemctl; its `pid`
   * is then the unit's MainPID when last started, in the pid namespace of that systemd.
   */
  supervisor?: 'local' | 'systemd';
  unit?: string;
  /** Restarts by the supervisor or a procedure since the first start. */
  restarts?: number;
  last_restart_at?: string;
  /** Set by the supervisor when it gave up after too many restarts in a row. */
  crash_loop?: { since: string; tries: number; last_exit: string };
  /** Set while a procedure stops it on purpose, so the supervisor does not restart it. */
  stopping?: boolean;
}

/** Records (or replaces) a process; written whole (src/state/json-file.ts), so a reader never sees half. */
export function recordProcess(state: StateDir, rec: ProcessRecord): void {
  writeStateJson(state.processFile(rec.name), rec);
}

/** The record of `name`; undefined when there is none; a record that no longer parses is an error. */
export function readProcess(state: StateDir, name: string): ProcessRecord | undefined {
  const file = state.processFile(name);
  try {
    return readStateJson<ProcessRecord>(
      file,
      (v) => {
        const r = v as Partial<ProcessRecord> | null;
        return typeof r?.name === 'string' && typeof r.role === 'string' && Number.isInteger(r.pid);
      },
      `stop its process by hand if it still runs (see ${state.logFile(name)}), then delete the file`,
    );
  } catch (err) {
    // A torn record often still holds its pid: the fix names it, so nobody hunts for the process.
    const pid =
      err instanceof StateCorruptError ? /"pid"\s*:\s*(\d+)\s*[,}]/.exec(readText(file))?.[1] : undefined;
    if (pid)
      throw new StateCorruptError(
        file,
        `it was pid ${pid}: if \`ps -p ${pid} -o cmd=\` shows ${name}'s process, stop it by hand (kill ${pid}; its log: ${state.logFile(name)}), then delete the file`,
      );
    throw err;
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Refuses, naming the file and its fix, when any process record no longer parses: what is about to
 * stop, move or replace processes (deploy, canary, rollback) must not find out halfway, with an
 * agent already stopped and the torn one's process unknown.
 */
export function checkProcessRecords(state: StateDir): void {
  listProcesses(state);
}

/** Changes fields of a record in place (a no-op when it is gone). */
export function updateProcess(state: StateDir, name: string, patch: Partial<ProcessRecord>): void {
  const rec = readProcess(state, name);
  if (rec) recordProcess(state, { ...rec, ...patch });
}

/** A record file that no longer parses: what a view names instead of failing on it. */
export type UnreadableRecord = UnreadableFile;

/**
 * Every record that reads, and every one that does not. For views (status, verify, incident
 * diagnosis, the supervisor): one truncated file must not hide the rest of the fleet. What stops,
 * restarts or removes processes uses `listProcesses`, which refuses instead.
 */
export function scanProcesses(state: StateDir): { records: ProcessRecord[]; unreadable: UnreadableRecord[] } {
  return scanStateFiles(state.run, (name) => readProcess(state, name));
}

/** Every recorded process, running or not, by name; a record that no longer parses is an error. */
export function listProcesses(state: StateDir): ProcessRecord[] {
  return allRecords(scanProcesses(state));
}

export function forgetProcess(state: StateDir, name: string): void {
  rmSync(state.processFile(name), { force: true });
}

/**
 * The order `down` stops processes in: agents first (they say goodbye through signaling), then the
 * services they used, all at once since none needs another to stop, the witness last so it records
 * every departure, then the database it may write to.
 */
export const STOP_TIERS: ProcessRole[][] = [
  // The supervisor first, so it does not restart what `down` stops.
  ['supervisor'],
  ['agents'],
  ['nginx', 'signaling', 'coturn', 'redis', 'prometheus'],
  ['witness'],
  // After the witness, whose last signed checkpoint goes into it (`up --witness-db postgres`).
  ['postgres'],
];
