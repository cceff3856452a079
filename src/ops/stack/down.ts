import { listProcesses, STOP_TIERS } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { type StopOutcome, Supervisor } from '../fleet/supervisor.js';
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

/**
 * Stops every process of the state directory, whoever started it (`up`, `deploy`), in STOP_TIERS
 * order: agents, then every service at once, the witness last.
 */
export async function down(o: DownOptions, ctx: Pick<OpContext, 'clock'>): Promise<DownReport> {
  const t0 = ctx.clock.now();
  const sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'down' });
  const procs = listProcesses(o.state);
  const outcome: Record<StopOutcome, string[]> = { stopped: [], not_running: [], failed: [] };
  const rank = (role: string) => {
    const i = STOP_TIERS.findIndex((t) => (t as string[]).includes(role));
    return i < 0 ? 1 : i;
  };
  for (let tier = 0; tier < STOP_TIERS.length; tier++) {
    const names = procs.filter((p) => rank(p.role) === tier).map((p) => p.name);
    if (names.length === 0) continue;
    for (const [name, r] of Object.entries(await sup.stopMany(names, o.graceMs ?? 5_000)))
      outcome[r].push(name);
  }
  for (const list of Object.values(outcome)) list.sort();
  return { state_dir: o.state.root, ...outcome, elapsed_ms: ctx.clock.now() - t0 };
}
