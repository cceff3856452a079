// A release's signaling instances onto its code: a rolling restart through the one restart path
// (src/ops/fleet/restart.ts), one instance at a time, each answering /health before the next is
// touched. An instance already running the release's entry script is left alone, so a roll that
// was interrupted (a canary runner killed mid-promotion) is finished by running it again.
import { readProcess } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import { restartRecorded } from '../fleet/restart.js';
import type { OpContext } from '../shared.js';
import { entryOf } from './install.js';

export interface RollStep {
  name: string;
  outcome: 'restarted' | 'unchanged' | 'not_recorded' | 'failed';
  /** The entry script it ran before. */
  from: string | null;
  detail: string;
}

export interface RollReport {
  bin: string;
  ok: boolean;
  instances: RollStep[];
}

/**
 * Restarts each of `names` (recorded signaling instances) on `bin`, one at a time, each healthy
 * before the next; stops at the first that does not come back (the rest keep their code).
 */
export async function rollSignaling(
  state: StateDir,
  names: string[],
  bin: string,
  why: string,
  progress: Progress | undefined,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
): Promise<RollReport> {
  const out: RollReport = { bin, ok: true, instances: [] };
  for (const name of names) {
    const rec = readProcess(state, name);
    const from = rec ? (entryOf(rec) ?? null) : null;
    if (!rec?.spec || from === null) {
      out.instances.push({ name, outcome: 'not_recorded', from, detail: 'no launch spec running ifmesh' });
      continue;
    }
    if (from === bin) {
      out.instances.push({ name, outcome: 'unchanged', from, detail: 'already on this release' });
      continue;
    }
    progress?.step(name, 'running', `restarting on ${bin}`);
    const r = await restartRecorded(
      state,
      name,
      { why, evenIfHealthy: true, launch: { ...rec.spec, args: [bin, ...rec.spec.args.slice(1)] } },
      ctx,
    );
    out.instances.push({ name, outcome: r.ok ? 'restarted' : 'failed', from, detail: r.detail });
    progress?.step(name, r.ok ? 'ok' : 'fail', r.ok ? `healthy on the release (${r.detail})` : r.detail);
    if (!r.ok) {
      out.ok = false;
      break;
    }
  }
  return out;
}

/** The signaling instances a release names (by role; older records by name). */
export function signalingNames(processes: { name: string; role?: string }[]): string[] {
  return processes
    .filter((p) => p.role === 'signaling' || (!p.role && p.name.startsWith('deploy-signaling-')))
    .map((p) => p.name);
}
