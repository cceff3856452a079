// `ifmesh systemd install|uninstall`: hand the state's recorded processes to systemd (each becomes
// a unit running its very launch spec) or take them back out. Plan first (what --dry-run prints:
// every unit file and every action), then apply under the deploy lock.
import { withLock } from '../../state/lock.js';
import { listProcesses, type ProcessRecord } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { waitFor } from '../../util/wait.js';
import type { OpContext } from '../shared.js';
import { answers } from './health.js';
import { withRestartLock } from './restart.js';
import { Supervisor } from './supervisor.js';
import { SystemdBackend, type SystemdSettings } from './systemd.js';
import { MESH_TARGET, renderMeshTarget, type UnitFile } from './systemd-units.js';
import { WATCHDOG_NAME } from './watchdog-process.js';

export interface SystemdUnitPlan {
  name: string;
  role: string;
  unit: string;
  /** The files written (a template, shared by every signaling instance, and the instance's drop-in). */
  files: UnitFile[];
  /** `move`: stop the local process, start the unit; `rewrite`: already a unit, restarted from its spec. */
  action: 'move' | 'rewrite';
}

export interface SystemdInstallReport {
  applied: boolean;
  unit_dir: string;
  user: string;
  /** How systemctl is reached: `systemctl` or the IFMESH_SYSTEMD_RUN prefix before it. */
  systemctl: string;
  units: SystemdUnitPlan[];
  /** Records ifmesh cannot run under systemd: adopted daemons (nginx, PostgreSQL) keep running as they are. */
  skipped: { name: string; why: string }[];
  actions: string[];
  results: { name: string; unit: string; ok: boolean; pid: number | null; detail: string }[];
}

const movable = (r: ProcessRecord) => r.spec !== undefined && r.role !== 'supervisor';

export function planSystemdInstall(state: StateDir, settings: SystemdSettings): SystemdInstallReport {
  const backend = new SystemdBackend(state, settings);
  const records = listProcesses(state);
  const units: SystemdUnitPlan[] = records.filter(movable).map((r) => {
    const u = backend.render({ name: r.name, role: r.role, port: r.port, spec: r.spec! });
    return {
      name: r.name,
      role: r.role,
      unit: u.unit,
      files: u.files,
      action: r.supervisor === 'systemd' ? 'rewrite' : 'move',
    };
  });
  if (units.some((u) => u.role === 'agents'))
    units.push({
      name: 'mesh',
      role: 'target',
      unit: MESH_TARGET,
      files: [{ file: MESH_TARGET, content: renderMeshTarget(backend.unitSettings()) }],
      action: 'rewrite',
    });
  const skipped = records
    .filter((r) => !movable(r))
    .map((r) => ({
      name: r.name,
      why:
        r.role === 'supervisor'
          ? 'ifmesh supervise: systemd restarts the units itself; stopped once nothing local is left to watch'
          : 'adopted daemon with no launch spec: keeps running as it is',
    }));
  const run = backend.runner;
  const actions = [
    `${run.shown('systemd-sysusers', ['--inline', `u ${settings.user} - …`])} (unless ${settings.user} exists); chown -R ${settings.user}: ${state.root}`,
    ...[...new Set(units.flatMap((u) => u.files.map((f) => f.file)))].map(
      (f) => `write ${settings.unit_dir}/${f}`,
    ),
    run.shown('systemctl', ['daemon-reload']),
    ...units
      .filter((u) => u.role !== 'target')
      .flatMap((u) => [
        ...(u.action === 'move' ? [`stop the local process ${u.name}`] : []),
        `write the environment file of ${u.unit} (0600), ${run.shown('systemctl', ['enable', u.unit])}, ${run.shown('systemctl', ['restart', u.unit])}, wait until it answers`,
      ]),
  ];
  return {
    applied: false,
    unit_dir: settings.unit_dir,
    user: settings.user,
    systemctl: run.shown('systemctl', []),
    units,
    skipped,
    actions,
    results: [],
  };
}

export async function installSystemd(
  state: StateDir,
  settings: SystemdSettings,
  dryRun: boolean,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
): Promise<SystemdInstallReport> {
  const plan = planSystemdInstall(state, settings);
  if (dryRun) return plan;
  return withLock(
    state,
    'deploy',
    'systemd install',
    async () => {
      const local = new Supervisor(state, { clock: ctx.clock, owner: 'systemd' });
      const results: SystemdInstallReport['results'] = [];
      for (const rec of listProcesses(state).filter(movable)) {
        const sup = new Supervisor(state, { clock: ctx.clock, owner: rec.owner, systemd: settings });
        // Under its restart lock: the local supervisor does not restart it between the two.
        const pid = await withRestartLock(state, rec.name, 'moving to systemd', ctx, async () => {
          if (rec.supervisor !== 'systemd') await local.stop(rec.name, 5_000);
          return sup.handToSystemd(rec);
        });
        const ok = await waitFor(
          () => answers(rec, ctx.dispatcher),
          { timeoutMs: 20_000, intervalMs: 100 },
          ctx.clock,
          ctx.signal,
        );
        const unit = plan.units.find((u) => u.name === rec.name)!.unit;
        results.push({
          name: rec.name,
          unit,
          ok,
          pid: ok ? (sup.running(rec.name) ?? pid) : null,
          detail: ok
            ? `running as ${unit}`
            : `did not answer within 20 s; last journal lines:\n${sup.tail(rec.name, 15).trim()}`,
        });
      }
      // Nothing local left to watch: the local watchdog goes (systemd restarts the units itself).
      if (!listProcesses(state).some((r) => r.supervised && r.supervisor !== 'systemd'))
        await local.stop(WATCHDOG_NAME, 5_000);
      return { ...plan, applied: true, results };
    },
    ctx.clock,
  );
}

export interface SystemdUninstallReport {
  applied: boolean;
  unit_dir: string;
  /** Units stopped and disabled (their records forgotten, as `down` does). */
  units: { name: string; unit: string }[];
  /** Unit files removed (those ifmesh generated for this state dir). */
  files: string[];
  stopped: string[];
  failed: string[];
}

export async function uninstallSystemd(
  state: StateDir,
  settings: SystemdSettings,
  dryRun: boolean,
  ctx: Pick<OpContext, 'clock'>,
): Promise<SystemdUninstallReport> {
  const backend = new SystemdBackend(state, settings);
  const units = listProcesses(state)
    .filter((r) => r.supervisor === 'systemd' && r.unit)
    .map((r) => ({ name: r.name, unit: r.unit! }));
  const files = backend.ownUnitFiles();
  const report = { applied: false, unit_dir: settings.unit_dir, units, files, stopped: [], failed: [] };
  if (dryRun) return report;
  return withLock(
    state,
    'deploy',
    'systemd uninstall',
    async () => {
      const sup = new Supervisor(state, { clock: ctx.clock, owner: 'systemd', systemd: settings });
      const outcome = await sup.stopMany(units.map((u) => u.name));
      const stopped = units.filter((u) => outcome[u.name] !== 'failed').map((u) => u.name);
      const failed = units.filter((u) => outcome[u.name] === 'failed').map((u) => u.name);
      backend.removeUnitFiles(files);
      return { ...report, applied: true, stopped, failed };
    },
    ctx.clock,
  );
}
