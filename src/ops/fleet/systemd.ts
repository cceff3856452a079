// systemd as the second way of running the recorded launch specs (STYLE rule 14): the supervisor
// (src/ops/fleet/supervisor.ts) hands a process whose record says `supervisor: 'systemd'` to this
// backend, which writes its unit (src/ops/fleet/systemd-units.ts) and its environment file, then
// drives it with systemctl: enable + restart to start, disable --now to stop, show MainPID to ask.
//
// Where that systemd is and how it is reached is the state's systemd settings, recorded when the
// units are first installed (`ifmesh systemd install`, `ifmesh deploy --supervisor systemd`):
// the unit directory (/etc/systemd/system), the service user, and the runner prefix
// (IFMESH_SYSTEMD_RUN, src/exec/systemctl.ts).
import { existsSync, lchownSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../errors.js';
import { parseRunPrefix, SystemdRunner } from '../../exec/systemctl.js';
import { readStateJson, writeFileWhole, writeStateJson } from '../../state/json-file.js';
import { scanProcesses } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import {
  INSTANCE_DROPIN,
  MESH_TARGET,
  marker,
  type RenderedUnit,
  renderEnvFile,
  renderMeshTarget,
  renderUnit,
  type UnitSettings,
  type UnitSource,
} from './systemd-units.js';

export interface SystemdSettings {
  /** Where unit files are written: /etc/systemd/system. */
  unit_dir: string;
  /** The dedicated user the services run as. */
  user: string;
  /** The runner prefix before systemctl/journalctl (empty: this host's systemd). */
  run: string[];
}

export const DEFAULT_UNIT_DIR = '/etc/systemd/system';
export const DEFAULT_SERVICE_USER = 'ifmesh';

/** The settings from flags and the environment, over what the state recorded, over the defaults. */
export function resolveSystemdSettings(
  state: StateDir,
  o: { unitDir?: string | undefined; user?: string | undefined; env: Record<string, string | undefined> },
): SystemdSettings {
  const saved = readSystemdSettings(state);
  const user = o.user ?? saved?.user ?? DEFAULT_SERVICE_USER;
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user))
    throw new UsageError(
      `--user ${JSON.stringify(user)} is not a system user name`,
      'use e.g. --user ifmesh',
    );
  return {
    unit_dir: path.resolve(o.unitDir ?? saved?.unit_dir ?? DEFAULT_UNIT_DIR),
    user,
    run:
      o.env.IFMESH_SYSTEMD_RUN !== undefined ? parseRunPrefix(o.env.IFMESH_SYSTEMD_RUN) : (saved?.run ?? []),
  };
}

export function readSystemdSettings(state: StateDir): SystemdSettings | undefined {
  return readStateJson<SystemdSettings>(
    state.systemdSettings,
    (v) => {
      const s = v as Partial<SystemdSettings> | null;
      return typeof s?.unit_dir === 'string' && typeof s.user === 'string' && Array.isArray(s.run);
    },
    'run `ifmesh systemd install` again to rewrite it',
  );
}

/**
 * Whether any recorded process of the state runs as a systemd unit, among the records that read (a
 * torn one is for status to name and for the procedures to refuse on).
 */
export function runsUnderSystemd(state: StateDir): boolean {
  return scanProcesses(state).records.some((r) => r.supervisor === 'systemd');
}

export type SystemdStopOutcome = 'stopped' | 'not_running' | 'failed';

/** One state dir's units on one systemd. */
export class SystemdBackend {
  readonly runner: SystemdRunner;
  private prepared = false;

  constructor(
    readonly state: StateDir,
    readonly settings: SystemdSettings,
  ) {
    this.runner = new SystemdRunner(settings.run);
  }

  unitSettings(): UnitSettings {
    return { user: this.settings.user, stateDir: this.state.root, envDir: this.state.systemdEnv };
  }

  render(src: UnitSource): RenderedUnit {
    return renderUnit(src, this.unitSettings());
  }

  /**
   * Once per run: the service user exists, the state dir is its own (the services write there, and
   * state files keep their owner when ifmesh rewrites them: src/state/json-file.ts), and the
   * settings are recorded for every later command.
   */
  prepare(): void {
    if (this.prepared) return;
    this.runner.ensureUser(this.settings.user, this.state.root);
    const { uid, gid } = this.runner.ids(this.settings.user);
    chownTree(this.state.root, uid, gid, path.dirname(this.state.postgresData));
    writeStateJson(this.state.systemdSettings, this.settings);
    this.prepared = true;
  }

  /**
   * Writes `src`'s unit and environment file and (re)starts it, enabled so it starts at boot.
   * Returns the unit and its MainPID (0 when it exited at once).
   */
  launch(src: UnitSource, env: Record<string, string>): { unit: string; pid: number } {
    this.prepare();
    const r = this.render(src);
    writeFileWhole(r.env_file, renderEnvFile(env), 0o600);
    let changed = false;
    for (const f of r.files) changed = this.writeUnitFile(f.file, f.content) || changed;
    if (src.role === 'agents')
      changed = this.writeUnitFile(MESH_TARGET, renderMeshTarget(this.unitSettings())) || changed;
    if (changed) this.runner.systemctl('daemon-reload');
    if (src.role === 'agents') this.runner.systemctl('enable', MESH_TARGET);
    this.runner.systemctl('enable', r.unit);
    this.runner.systemctl('restart', r.unit);
    return { unit: r.unit, pid: this.runner.show(r.unit).MainPID };
  }

  /** Stops the unit and disables it: a stopped process of the fleet does not come back at boot. */
  stop(unit: string): SystemdStopOutcome {
    return this.stopMany([unit])[unit]!;
  }

  /**
   * Stops and disables several units in one `systemctl disable --now`: systemd runs their stop jobs
   * at once, as `down` stops a tier of local processes at once (one call per unit would wait for
   * each in turn: a signaling instance's drain, then the next one's).
   */
  stopMany(units: string[]): Record<string, SystemdStopOutcome> {
    const before = this.runner.showMany(units);
    const loaded = units.filter((u) => before[u]!.LoadState !== 'not-found');
    if (loaded.length) this.runner.systemctl('disable', '--now', ...loaded);
    const after = this.runner.showMany(loaded);
    return Object.fromEntries(
      units.map((u) => {
        const a = after[u];
        if (!a) return [u, 'not_running'];
        if (a.ActiveState === 'active' || a.ActiveState === 'deactivating') return [u, 'failed'];
        const was = before[u]!.ActiveState;
        return [u, was === 'active' || was === 'activating' ? 'stopped' : 'not_running'];
      }),
    );
  }

  running(unit: string): number | undefined {
    return this.runner.mainPid(unit);
  }

  tail(unit: string, lines: number): string {
    return this.runner.journal(unit, lines);
  }

  /** Writes a unit file unless it already holds `content`; true when it changed. */
  private writeUnitFile(file: string, content: string): boolean {
    const full = path.join(this.settings.unit_dir, file);
    if (existsSync(full) && readFileSync(full, 'utf8') === content) return false;
    writeFileWhole(full, content, 0o644);
    return true;
  }

  /**
   * Files in the unit directory that ifmesh generated for this state dir: units, targets and the
   * template instances' drop-ins (`webrtc-signaling-server@8443.service.d/ifmesh.conf`).
   */
  ownUnitFiles(): string[] {
    const dir = this.settings.unit_dir;
    if (!existsSync(dir)) return [];
    const mark = marker(this.unitSettings());
    const ours = (f: string) => {
      const full = path.join(dir, f);
      return existsSync(full) && lstatSync(full).isFile() && readFileSync(full, 'utf8').startsWith(mark);
    };
    const entries = readdirSync(dir).filter((f) => f.startsWith('webrtc-'));
    return [
      ...entries.filter((f) => /\.(service|target)$/.test(f)),
      ...entries.filter((f) => f.endsWith('.service.d')).map((d) => `${d}/${INSTANCE_DROPIN}`),
    ]
      .filter(ours)
      .sort();
  }

  /** Removes this state dir's unit files and environment files, then reloads systemd. */
  removeUnitFiles(files: string[]): void {
    for (const f of files) {
      if (f.endsWith('.target')) this.runner.run('systemctl', ['disable', f]);
      rmSync(path.join(this.settings.unit_dir, f), { force: true });
      // A drop-in directory goes with its last file.
      const parent = path.dirname(path.join(this.settings.unit_dir, f));
      if (parent !== this.settings.unit_dir && readdirSync(parent).length === 0)
        rmSync(parent, { recursive: true });
    }
    rmSync(this.state.systemdEnv, { recursive: true, force: true });
    if (files.length) this.runner.systemctl('daemon-reload');
  }
}

/**
 * Hands `root` and everything under it to uid:gid (symlinks themselves, never their targets), but
 * for a PostgreSQL cluster, which must stay its own server user's.
 */
function chownTree(root: string, uid: number, gid: number, skip: string): void {
  if (!existsSync(root)) return;
  const walk = (p: string) => {
    if (p === skip) return;
    const st = lstatSync(p);
    if (st.uid !== uid || st.gid !== gid) lchownSync(p, uid, gid);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e));
  };
  walk(root);
}
