import { blockedBy } from '../../state/lock.js';
import { listProcesses, type ProcessRecord, STOP_TIERS } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { runningPid, type StopOutcome, Supervisor } from '../fleet/supervisor.js';
import type { OpContext } from '../shared.js';

export interface DownReport {
  state_dir: string;
  /** Every recorded process is in exactly one of these. */
  stopped: string[];
  not_running: string[];
  /** Still alive after SIGTERM, the grace period and SIGKILL. */
  failed: string[];
  elapsed_ms: number;
}

export interface DownOptions {
  state: StateDir;
  /** SIGTERM to SIGKILL, per process. */
  graceMs?: number;
}

/** The recorded processes in the order `down` stops them: one list per STOP_TIERS tier, empty ones left out. */
function stopOrder(procs: ProcessRecord[]): ProcessRecord[][] {
  const rank = (role: string) => {
    const i = STOP_TIERS.findIndex((t) => (t as string[]).includes(role));
    return i < 0 ? 1 : i;
  };
  return STOP_TIERS.map((_, tier) =>
    procs.filter((p) => rank(p.role) === tier).sort((a, b) => a.name.localeCompare(b.name)),
  ).filter((t) => t.length > 0);
}

/**
 * Stops every process of the state directory, whoever started it (`up`, `deploy`), in STOP_TIERS
 * order: agents, then every service at once, the witness last.
 */
export async function down(o: DownOptions, ctx: Pick<OpContext, 'clock'>): Promise<DownReport> {
  const t0 = ctx.clock.now();
  const sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'down' });
  const outcome: Record<StopOutcome, string[]> = { stopped: [], not_running: [], failed: [] };
  for (const tier of stopOrder(listProcesses(o.state)))
    for (const [name, r] of Object.entries(
      await sup.stopMany(
        tier.map((p) => p.name),
        o.graceMs ?? 5_000,
      ),
    ))
      outcome[r].push(name);
  for (const list of Object.values(outcome)) list.sort();
  return { state_dir: o.state.root, ...outcome, elapsed_ms: ctx.clock.now() - t0 };
}

export interface DownPlanProcess {
  name: string;
  role: string;
  /** Its pid now (a unit's MainPID); null when it is not running and `down` only forgets its record. */
  pid: number | null;
  unit: string | null;
}

export interface DownPlan {
  state_dir: string;
  /** Stopped one step after another; the processes of a step at once. */
  steps: DownPlanProcess[][];
  /** A canary, rollback or deploy running now, or an incident's hold: `down` stops its processes anyway. */
  deploy_lock: { holder: string; pid: number; release_hint: string | null } | null;
}

/** What `down` would stop, in its order, and which of it runs now; changes nothing. */
export async function planDown(state: StateDir): Promise<DownPlan> {
  return {
    state_dir: state.root,
    steps: stopOrder(listProcesses(state)).map((tier) =>
      tier.map((p) => ({
        name: p.name,
        role: p.role,
        pid: runningPid(state, p) ?? null,
        unit: p.supervisor === 'systemd' ? (p.unit ?? null) : null,
      })),
    ),
    deploy_lock: await blockedBy(state, 'deploy'),
  };
}
