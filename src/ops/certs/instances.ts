// The signaling instances a certificate serves, from the state dir's process records: each record
// holds how its instance was launched (src/state/processes.ts), so nothing is read back from /proc.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnvFile } from '../../config/env-file.js';
import { listProcesses, type ProcessRecord } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { runningPid } from '../fleet/supervisor.js';

export interface ServingInstance {
  name: string;
  pid: number;
  owner: string;
  port: number | undefined;
  url: string | undefined;
  /** When its process was (re)started: it serves the certificate its file held then. */
  started_at: string;
}

/**
 * Whether the instance was launched with `cert`: --tls-cert, else SIGNALING_TLS_CERT in its
 * environment, else in the env file its environment names (IFMESH_CONFIG: how `deploy` passes the
 * operator's configuration on, so most TLS instances name their certificate there).
 */
function serves(r: ProcessRecord, cert: string): boolean {
  if (!r.spec) return false;
  const i = r.spec.args.indexOf('--tls-cert');
  const named = (i >= 0 ? r.spec.args[i + 1] : undefined) ?? r.spec.env.SIGNALING_TLS_CERT;
  if (named !== undefined) return path.resolve(r.spec.cwd, named) === path.resolve(cert);
  const file = r.spec.env.IFMESH_CONFIG ? path.resolve(r.spec.cwd, r.spec.env.IFMESH_CONFIG) : undefined;
  if (!file) return false;
  let inFile: string | undefined;
  try {
    inFile = parseEnvFile(readFileSync(file, 'utf8'), file).entries.get('SIGNALING_TLS_CERT')?.value;
  } catch {
    return false;
  }
  // Relative paths in an env file are relative to the file (as the configuration loader reads them).
  return Boolean(inFile) && path.resolve(path.dirname(file), inFile!) === path.resolve(cert);
}

const running = (state: StateDir) =>
  listProcesses(state).filter((r) => r.role === 'signaling' && runningPid(state, r) !== undefined);

const view = (r: ProcessRecord): ServingInstance => ({
  name: r.name,
  pid: r.pid,
  owner: r.owner,
  port: r.port,
  url: r.url,
  started_at: r.started_at,
});

/** Running signaling instances of `state` that serve `cert`, in name order. */
export function instancesServing(state: StateDir, cert: string): ServingInstance[] {
  return running(state)
    .filter((r) => serves(r, cert))
    .map(view);
}

/** Running signaling instances started without `cert`: left alone, and named so nobody is surprised. */
export function instancesNotServing(state: StateDir, cert: string): string[] {
  return running(state)
    .filter((r) => !serves(r, cert))
    .map((r) => r.name);
}
