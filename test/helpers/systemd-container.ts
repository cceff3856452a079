// A real systemd, booted in a container, for the systemd tests (these machines have no systemd as
// PID 1). Recipe measured in shared/notes/field-notes.md ("A real systemd in a container"): the
// host's own /usr, read-only, under a tmpfs root (`systemd-nspawn -D / --volatile=yes`: no download,
// no rootfs to cache), `--keep-unit --register=no` (no host systemd to register with), booted to
// basic.target (else the host's coturn, nginx, redis… presets start inside it) with firstboot off
// (else boot waits for a prompt). The network is the host's: services bind 127.0.0.1 there and the
// test reaches them on loopback. It is driven with `nsenter -t <its pid 1> -a …`: the prefix ifmesh
// takes as IFMESH_SYSTEMD_RUN.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
} from 'node:fs';
import path from 'node:path';
import { requireBinary } from './binaries.js';
import { ROOT } from './cli.js';
import { trackPid } from './pids.js';
import { waitFor } from './wait.js';

export interface SystemdContainer {
  /** The container's PID 1 (systemd), as the host sees it. */
  pid1: number;
  /** The prefix that runs a command inside it: IFMESH_SYSTEMD_RUN. */
  run: string;
  /** Runs a command inside it; throws on a non-zero exit. */
  exec(args: string[]): string;
  /** Powers it off and removes what nspawn leaves behind without a host systemd. */
  stop(): Promise<void>;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function exeOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

/**
 * Boots systemd with `binds` (host paths, read-write, at the same path inside) and `unitDir` (a host
 * directory) as its /etc/systemd/system, so units ifmesh writes on the host are the container's.
 * The package (this worktree, its node_modules) is bound read-only.
 */
export async function bootSystemd(o: {
  name: string;
  binds: string[];
  unitDir: string;
  log: string;
}): Promise<SystemdContainer> {
  requireBinary('systemd-nspawn', 'systemd-container');
  requireBinary('nsenter', 'util-linux');
  const ro = [...new Set([ROOT, realpathSync(path.join(ROOT, 'node_modules'))])];
  const fd = openSync(o.log, 'a');
  const nspawn = spawn(
    'systemd-nspawn',
    [
      '-D',
      '/',
      '--volatile=yes',
      '--keep-unit',
      '--register=no',
      '-M',
      o.name,
      '--console=read-only',
      ...ro.map((p) => `--bind-ro=${p}`),
      ...o.binds.map((p) => `--bind=${p}`),
      `--bind=${o.unitDir}:/etc/systemd/system`,
      '-b',
      'systemd.firstboot=off',
      'systemd.unit=basic.target',
    ],
    { detached: true, stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  trackPid(nspawn.pid);
  const stop = async () => {
    if (alive(nspawn)) {
      // SIGTERM to nspawn: a clean poweroff of the container.
      nspawn.kill('SIGTERM');
      const gone = await waitFor(async () => !alive(nspawn), 'the container to power off', {
        timeoutMs: 20_000,
      }).then(
        () => true,
        () => false,
      );
      if (!gone) nspawn.kill('SIGKILL');
    }
    // Without a host systemd nothing removes these, and the next boot would find them.
    for (const c of ['systemd', 'unified'])
      for (const d of ['payload/init.scope', 'payload/supervisor', 'payload'])
        try {
          rmSync(`/sys/fs/cgroup/${c}/${d}`, { recursive: false });
        } catch {
          // absent, or a cgroup rmdir refused: ignore, as nspawn's own cleanup would
          try {
            execFileSync('rmdir', [`/sys/fs/cgroup/${c}/${d}`], { stdio: 'ignore' });
          } catch {
            // not there
          }
        }
    rmSync(`/run/systemd/nspawn/propagate/${o.name}`, { recursive: true, force: true });
    rmSync('/run/systemd/nspawn/locks', { recursive: true, force: true });
  };
  try {
    let pid1 = 0;
    await waitFor(
      async () => {
        if (!alive(nspawn))
          throw new Error(`systemd-nspawn exited: ${readFileSync(o.log, 'utf8').slice(-2000)}`);
        pid1 = childrenOf(nspawn.pid!).find((p) => exeOf(p) === '/usr/lib/systemd/systemd') ?? 0;
        return pid1 > 0;
      },
      'the container to start systemd',
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    const prefix = ['nsenter', '-t', String(pid1), '-a'];
    const exec = (args: string[]) =>
      execFileSync(prefix[0]!, [...prefix.slice(1), ...args], { encoding: 'utf8', timeout: 30_000 });
    // "degraded" is fine: some host units fail under --volatile; ours are what the tests check.
    // Its bus comes up a moment after PID 1 does ("Failed to connect to bus"): ask until it answers.
    let state = '';
    await waitFor(
      () => {
        const r = spawnSync(prefix[0]!, [...prefix.slice(1), 'systemctl', 'is-system-running', '--wait'], {
          encoding: 'utf8',
          timeout: 60_000,
        });
        state = (r.stdout ?? '').trim();
        return state !== '' && !/bus/i.test(r.stderr ?? '');
      },
      'the container systemd to finish booting',
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    if (state !== 'running' && state !== 'degraded') throw new Error(`container systemd is ${state}`);
    return { pid1, run: prefix.join(' '), exec, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The unit files a directory holds (for the leak check: the test's temp dir is removed after). */
export function unitFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => /\.(service|target)$/.test(f)) : [];
}
