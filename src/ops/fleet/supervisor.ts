// The processes of a state directory, recorded with their role and launch spec in the state's
// process list (src/state/processes.ts). Two ways of running them, behind this one interface:
// local (detached, output in <state>/logs/<name>.log, stopped by pid; a record whose process is gone
// or a zombie is stale) and systemd (a unit per process, driven with systemctl, output in the
// journal: src/ops/fleet/systemd.ts). A record says which runs it; a supervisor built with
// `systemd` settings starts new processes as units.
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { unconfiguredEnv } from '../../config/load.js';
import { stopOrphanedWorkers } from '../../exec/nginx.js';
import { isAlive } from '../../exec/pid.js';
import {
  forgetProcess,
  type LaunchSpec,
  listProcesses,
  type ProcessRecord,
  type ProcessRole,
  readProcess,
  recordProcess,
  updateProcess,
} from '../../state/processes.js';
import { isSecretEnvKey, secretEnv, storeSecretEnv } from '../../state/secrets.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Clock } from '../../util/clock.js';
import { waitFor } from '../../util/wait.js';
import { readSystemdSettings, SystemdBackend, type SystemdSettings } from './systemd.js';

export { isAlive };

export interface ProcessSpec {
  name: string;
  role: ProcessRole;
  command: string;
  args: string[];
  /** Given on top of the starter's environment; secret values go to the secrets file, names to the record. */
  env?: Record<string, string>;
  cwd?: string;
  port?: number;
  url?: string;
  /** Restarted by the state's supervisor (`ifmesh supervise`) when it dies. */
  supervised?: boolean;
}

/** Where a process's secret environment value is kept in the secrets file. */
const processSecretName = (process: string, key: string) => `process:${process}:${key}`;

export type StopOutcome = 'stopped' | 'not_running' | 'failed';

/** How long a SIGKILLed process may take to vanish before we call the stop failed. */
const AFTER_KILL_MS = 2_000;

export class Supervisor {
  /** `owner` is what starts processes through this supervisor (`up`, `deploy`): kept in each record. */
  /** `systemd`: new processes start as systemd units (`deploy --supervisor systemd`). */
  constructor(
    readonly state: StateDir,
    private readonly o: { clock: Clock; owner: string; systemd?: SystemdSettings | undefined },
  ) {}

  private backend?: SystemdBackend;
  /**
   * Units this supervisor stopped: a procedure that replaces a process (canary and rollback move an
   * agent: stop, then start on the new spec; a deploy again) keeps it under systemd.
   */
  private readonly wasUnit = new Set<string>();

  /** The systemd the state's units run on (settings given, else recorded at install). */
  systemd(): SystemdBackend {
    if (!this.backend) {
      const settings = this.o.systemd ?? readSystemdSettings(this.state);
      if (!settings)
        throw new Error(`${this.state.systemdSettings} is missing: run \`ifmesh systemd install\` again`);
      this.backend = new SystemdBackend(this.state, settings);
    }
    return this.backend;
  }
  /** The clock its waits run on (a stop's grace period), for callers that wait around it. */
  get clock(): Clock {
    return this.o.clock;
  }

  /** Where a process's output goes: its log file, or its unit's journal. */
  logFile(name: string): string {
    const rec = readProcess(this.state, name);
    return rec?.supervisor === 'systemd' && rec.unit
      ? `${this.systemd().runner.shown('journalctl', ['-u', rec.unit])}`
      : this.state.logFile(name);
  }

  /**
   * The running process's pid (a unit's MainPID), if it runs; undefined otherwise (a dead one's
   * record stays, for `status` to show).
   */
  running(name: string): number | undefined {
    const rec = readProcess(this.state, name);
    return rec ? this.pidOf(rec) : undefined;
  }

  /**
   * How often a process was restarted since its start: by the supervisor or a procedure (its record),
   * and by systemd itself for a unit (NRestarts). 0 when it is not recorded.
   */
  restartCount(rec: ProcessRecord | string): number {
    const r = typeof rec === 'string' ? readProcess(this.state, rec) : rec;
    if (!r) return 0;
    return (
      (r.restarts ?? 0) +
      (r.supervisor === 'systemd' && r.unit ? this.systemd().runner.show(r.unit).NRestarts : 0)
    );
  }

  /** `running` of a record already read. */
  pidOf(rec: ProcessRecord): number | undefined {
    if (rec.supervisor === 'systemd' && rec.unit) return this.systemd().running(rec.unit);
    return runningPid(this.state, rec);
  }

  /** Every recorded process, running or not; one that no longer parses is an error (listProcesses). */
  list(): ProcessRecord[] {
    return listProcesses(this.state);
  }

  /** Starts `spec` detached, its output appended to its log, and records it with its launch spec. */
  start(spec: ProcessSpec): number {
    const env = spec.env ?? {};
    const secretKeys = Object.keys(env).filter(isSecretEnvKey).sort();
    // Kept per process: one process's value (a canary's --set TURN_PASSWORD) never replaces another's.
    storeSecretEnv(
      this.state,
      Object.fromEntries(secretKeys.map((k) => [processSecretName(spec.name, k), env[k]!])),
    );
    const launch: LaunchSpec = {
      command: spec.command,
      args: spec.args,
      cwd: path.resolve(spec.cwd ?? this.state.root),
      env: Object.fromEntries(Object.entries(env).filter(([k]) => !isSecretEnvKey(k))),
      secret_env: secretKeys,
    };
    if (this.runsAsUnit(spec)) {
      // systemd restarts it (Restart=on-failure): ifmesh's own supervisor leaves it alone.
      const { unit, pid } = this.systemd().launch({ ...spec, spec: launch }, env);
      this.adopt(spec, pid, { spec: launch, supervisor: 'systemd', unit });
      return pid;
    }
    const pid = this.spawnDetached(spec.name, launch, env);
    this.adopt(spec, pid, { spec: launch, ...(spec.supervised ? { supervised: true } : {}) });
    return pid;
  }

  /**
   * Whether `spec` starts as a systemd unit: this supervisor was given systemd settings (deploy
   * --supervisor systemd), or the process ran as a unit before it was stopped (canary and rollback
   * move an agent: stop, then start on another spec), or its siblings of the same role run as units
   * (an agent started by a canary resumed after a crash, or new in a rolled-back release).
   */
  private runsAsUnit(spec: Pick<ProcessSpec, 'name' | 'role'>): boolean {
    if (this.o.systemd || this.wasUnit.has(spec.name)) return true;
    return listProcesses(this.state).some(
      (r) => r.role === spec.role && r.name !== spec.name && r.supervisor === 'systemd',
    );
  }

  /** A recorded process's whole environment: its spec's, with its secret values from the secrets file. */
  launchEnv(rec: ProcessRecord & { spec: LaunchSpec }): Record<string, string> {
    const scoped = secretEnv(
      this.state,
      rec.spec.secret_env.map((k) => processSecretName(rec.name, k)),
    );
    const env: Record<string, string> = { ...rec.spec.env };
    for (const k of rec.spec.secret_env) {
      const v = scoped[processSecretName(rec.name, k)] ?? secretEnv(this.state, [k])[k];
      if (v !== undefined) env[k] = v;
    }
    return env;
  }

  /**
   * Starts a recorded process again from its launch spec, under the record's owner, counting the
   * restart; `why` goes to its log. The record must have a spec (adopted daemons have none).
   */
  restartFromRecord(rec: ProcessRecord, why: string): number {
    if (!rec.spec) throw new Error(`${rec.name} was adopted, not launched by ifmesh: it has no launch spec`);
    const env = this.launchEnv({ ...rec, spec: rec.spec });
    let pid: number;
    if (rec.supervisor === 'systemd') {
      // systemctl restart: the unit (rewritten from the same spec) stops and starts; the journal
      // records both.
      pid = this.systemd().launch({ ...rec, spec: rec.spec }, env).pid;
    } else {
      this.logRestart(rec.name, why);
      pid = this.spawnDetached(rec.name, rec.spec, env);
    }
    this.recordRestart(rec, pid);
    return pid;
  }

  /** `why` a process restarts, in its log (the logs directory recreated if an operator removed it). */
  logRestart(name: string, why: string): void {
    mkdirSync(this.state.logs, { recursive: true });
    appendFileSync(this.logFile(name), `[ifmesh] ${new Date(this.o.clock.now()).toISOString()} ${why}\n`);
  }

  /** Records `rec` restarted as `pid`: counted, and no longer stopping or crash-looping. */
  recordRestart(rec: ProcessRecord, pid: number): void {
    const now = new Date(this.o.clock.now()).toISOString();
    const { stopping: _s, crash_loop: _c, ...kept } = rec;
    recordProcess(this.state, {
      ...kept,
      pid,
      started_at: now,
      restarts: (rec.restarts ?? 0) + 1,
      last_restart_at: now,
    });
  }

  /** Runs a recorded process as a systemd unit from its launch spec (`ifmesh systemd install`). */
  handToSystemd(rec: ProcessRecord): number {
    if (!rec.spec) throw new Error(`${rec.name} was adopted, not launched by ifmesh: it has no launch spec`);
    const { unit, pid } = this.systemd().launch(
      { ...rec, spec: rec.spec },
      this.launchEnv({ ...rec, spec: rec.spec }),
    );
    const { stopping: _s, crash_loop: _c, supervised: _v, ...kept } = rec;
    recordProcess(this.state, {
      ...kept,
      pid,
      started_at: new Date(this.o.clock.now()).toISOString(),
      supervisor: 'systemd',
      unit,
    });
    return pid;
  }

  private spawnDetached(name: string, launch: LaunchSpec, env: Record<string, string>): number {
    mkdirSync(this.state.logs, { recursive: true });
    const fd = openSync(this.logFile(name), 'a');
    try {
      const child = spawn(launch.command, launch.args, {
        detached: true,
        cwd: launch.cwd,
        stdio: ['ignore', fd, fd],
        env: { ...unconfiguredEnv(), ...env },
      });
      if (!child.pid) throw new Error(`could not start ${name} (${launch.command})`);
      child.unref();
      return child.pid;
    } finally {
      closeSync(fd);
    }
  }

  /** Records a process started by someone else (nginx daemonizes) so it is stopped like ours. */
  adopt(
    spec: Pick<ProcessSpec, 'name' | 'role' | 'port' | 'url'>,
    pid: number,
    extra: Pick<ProcessRecord, 'spec' | 'supervised' | 'supervisor' | 'unit'> = {},
  ): void {
    recordProcess(this.state, {
      name: spec.name,
      role: spec.role,
      pid,
      started_at: new Date(this.o.clock.now()).toISOString(),
      owner: this.o.owner,
      ...(spec.port !== undefined ? { port: spec.port } : {}),
      ...(spec.url !== undefined ? { url: spec.url } : {}),
      ...extra,
    });
  }

  /**
   * Stops several processes at once: local ones in parallel (SIGTERM to each), units in one
   * systemctl call, so systemd stops them in parallel too.
   */
  async stopMany(names: string[], graceMs = 5_000): Promise<Record<string, StopOutcome>> {
    const recs = names.map((n) => readProcess(this.state, n));
    const units = recs.filter((r): r is ProcessRecord => r?.supervisor === 'systemd' && Boolean(r.unit));
    const out: Record<string, StopOutcome> = {};
    if (units.length) {
      const r = this.systemd().stopMany(units.map((u) => u.unit!));
      for (const rec of units) {
        out[rec.name] = r[rec.unit!]!;
        this.wasUnit.add(rec.name);
        if (out[rec.name] !== 'failed') forgetProcess(this.state, rec.name);
      }
    }
    await Promise.all(
      names
        .filter((n) => !(n in out))
        .map(async (n) => {
          out[n] = await this.stop(n, graceMs);
        }),
    );
    return out;
  }

  /** SIGTERM, then SIGKILL once `graceMs` has passed on the clock. */
  async stop(name: string, graceMs = 5_000): Promise<StopOutcome> {
    const rec = readProcess(this.state, name);
    if (rec?.supervisor === 'systemd' && rec.unit) {
      // systemd sends SIGTERM, then SIGKILL after the unit's TimeoutStopSec.
      const outcome = this.systemd().stop(rec.unit);
      this.wasUnit.add(name);
      if (outcome !== 'failed') forgetProcess(this.state, name);
      return outcome;
    }
    const pid = this.running(name);
    if (pid === undefined) {
      // An nginx master killed with SIGKILL leaves its workers serving the port: they go with it.
      if (rec?.role === 'nginx' && rec.port) await stopOrphanedWorkers(rec.port, this.o.clock);
      forgetProcess(this.state, name);
      return 'not_running';
    }
    const gone = () => !isAlive(pid);
    // Marked first, so the supervisor does not take this stop for a crash.
    updateProcess(this.state, name, { stopping: true });
    signal(pid, 'SIGTERM');
    const poll = { intervalMs: 25 };
    if (!(await waitFor(gone, { ...poll, timeoutMs: graceMs }, this.o.clock))) {
      signal(pid, 'SIGKILL');
      await waitFor(gone, { ...poll, timeoutMs: AFTER_KILL_MS }, this.o.clock);
    }
    if (!gone()) return 'failed';
    forgetProcess(this.state, name);
    return 'stopped';
  }

  tail(name: string, lines = 20): string {
    const rec = readProcess(this.state, name);
    if (rec?.supervisor === 'systemd' && rec.unit) return this.systemd().tail(rec.unit, lines);
    const file = this.logFile(name);
    if (!existsSync(file)) return '';
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone between the check and the signal
  }
}

/** A recorded process's pid while it runs (a unit's current MainPID), whichever supervisor runs it. */
export function runningPid(state: StateDir, rec: ProcessRecord): number | undefined {
  if (rec.supervisor === 'systemd' && rec.unit) {
    const settings = readSystemdSettings(state);
    return settings ? new SystemdBackend(state, settings).running(rec.unit) : undefined;
  }
  return Number.isInteger(rec.pid) && rec.pid > 0 && isAlive(rec.pid) ? rec.pid : undefined;
}
