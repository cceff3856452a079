// The signaling instances a certificate serves, from the state dir's process records, and how to
// restart one exactly as it was started: its argv, working directory and environment are read back
// from /proc (Linux), so a restart needs no record of how `up` or `deploy` launched it.
import { readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { isAlive } from '../../exec/pid.js';
import { listProcesses, type ProcessRecord } from '../../state/processes.js';

export interface InstanceLaunch {
  name: string;
  pid: number;
  owner: string;
  port: number | undefined;
  url: string | undefined;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

function readLaunch(rec: ProcessRecord): InstanceLaunch | undefined {
  try {
    const argv = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const env = Object.fromEntries(
      readFileSync(`/proc/${rec.pid}/environ`, 'utf8')
        .split('\0')
        .filter((kv) => kv.includes('='))
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    const cwd = readlinkSync(`/proc/${rec.pid}/cwd`);
    return { name: rec.name, pid: rec.pid, owner: rec.owner, port: rec.port, url: rec.url, argv, cwd, env };
  } catch {
    return undefined;
  }
}

/** Whether the instance was started with `cert` (--tls-cert, or SIGNALING_TLS_CERT in its environment). */
function serves(l: InstanceLaunch, cert: string): boolean {
  const i = l.argv.indexOf('--tls-cert');
  const flag = i >= 0 ? l.argv[i + 1] : undefined;
  const named = flag ?? l.env.SIGNALING_TLS_CERT;
  return named !== undefined && path.resolve(l.cwd, named) === path.resolve(cert);
}

function runningSignaling(stateDir: string): InstanceLaunch[] {
  return listProcesses(stateDir)
    .filter((r) => r.role === 'signaling' && isAlive(r.pid))
    .map(readLaunch)
    .filter((l): l is InstanceLaunch => l !== undefined);
}

/** Running signaling instances of `stateDir` that serve `cert`, in name order. */
export function instancesServing(stateDir: string, cert: string): InstanceLaunch[] {
  return runningSignaling(stateDir).filter((l) => serves(l, cert));
}

/** Running signaling instances started without `cert`: left alone, and named so nobody is surprised. */
export function instancesNotServing(stateDir: string, cert: string): string[] {
  return runningSignaling(stateDir)
    .filter((l) => !serves(l, cert))
    .map((l) => l.name);
}
