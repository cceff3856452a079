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
import type { StateDir } from '../../state/state-dir.js';
import {
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
    writeFileWhole(r.env_file, renderEnvFile({ ...env, ...r.extra_env }), 0o600);
    let changed = this.writeUnitFile(r.file, r.content);
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
    const before = this.runner.show(unit);
    if (before.LoadState === 'not-found') return 'not_running';
    this.runner.systemctl('disable', '--now', unit);
    const after = this.runner.show(unit);
    if (after.ActiveState === 'active' || after.ActiveState === 'deactivating') return 'failed';
    return before.ActiveState === 'active' || before.ActiveState === 'activating' ? 'stopped' : 'not_running';
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

  /** Unit files in the unit directory that ifmesh generated for this state dir. */
  ownUnitFiles(): string[] {
    const dir = this.settings.unit_dir;
    if (!existsSync(dir)) return [];
    const mark = marker(this.unitSettings());
    return readdirSync(dir)
      .filter((f) => /^webrtc-.*\.(service|target)$/.test(f))
      .filter((f) => {
        const full = path.join(dir, f);
        return lstatSync(full).isFile() && readFileSync(full, 'utf8').startsWith(mark);
      })
      .sort();
  }

  /** Removes this state dir's unit files and environment files, then reloads systemd. */
  removeUnitFiles(files: string[]): void {
    for (const f of files) {
      if (f.endsWith('.target')) this.runner.run('systemctl', ['disable', f]);
      rmSync(path.join(this.settings.unit_dir, f), { force: true });
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
