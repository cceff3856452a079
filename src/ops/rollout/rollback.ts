// rollback.sh as a typed procedure: a pure plan (from the current release to the previous or a named
// one), then apply under the deploy lock: stop the current agents, start the target's, health-check
// them; a target that does not come up is undone, so a failed rollback leaves what ran before.
import type { MeshConfig } from '../../config/load.js';
import { CheckFailedError, UsageError } from '../../errors.js';
import { withLock } from '../../state/lock.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import {
  currentRelease,
  listReleases,
  operator,
  type Release,
  releaseBin,
  setCurrentRelease,
  setReleaseOutcome,
} from '../deploy/releases.js';
import { Supervisor } from '../fleet/supervisor.js';
import { checkIncidentRecords } from '../incident/store.js';
import { rollSignaling, signalingNames } from '../release/roll.js';
import type { OpContext } from '../shared.js';
import { instanceUrls, moveAgent, waitRegistered } from './agents.js';
import { runEvents } from './events.js';

export interface RollbackPlan {
  from: { id: string; ref: string; deployment_id: string };
  to: { id: string; ref: string; deployment_id: string };
  reason: string;
  operator: string;
  /** Agents restarted on the target's specs; the signaling instances and nginx are kept. */
  agents: string[];
  /** The code each side runs: its installed release (version, integrity), or the running ifmesh's. */
  code: { from: string; to: string; changes: boolean };
  /** Signaling instances restarted (one at a time) on the target's code, when it differs. */
  signaling: string[];
}

const codeLabel = (r: Release) =>
  r.build ? `${r.build.name}@${r.build.version} (${r.build.id})` : 'the running ifmesh';

const usable = (r: Release) =>
  r.agent_specs !== undefined && r.outcome !== 'failed' && r.outcome !== 'aborted';

/** Pure: the release to go back to, by id or ref, or the newest usable one older than `current`. */
export function chooseTarget(all: Release[], current: Release, wanted: string | undefined): Release {
  if (wanted) {
    const r =
      all.find((x) => x.id === wanted) ??
      [...all].reverse().find((x) => x.ref === wanted && x.id !== current.id);
    if (!r) throw new UsageError(`no release ${wanted}`, 'see `ifmesh releases` for their ids and refs');
    if (r.id === current.id) throw new UsageError(`${wanted} is the current release: nothing to roll back`);
    if (!r.agent_specs)
      throw new UsageError(
        `release ${r.id} was recorded before ifmesh kept how its agents start`,
        'deploy it again instead',
      );
    return r;
  }
  const older = all.filter((x) => x.id !== current.id && x.created_at <= current.created_at && usable(x));
  const prev = older.at(-1);
  if (!prev)
    throw new UsageError(
      `no previous release to roll back to: ${current.id} is the only one recorded`,
      'name one with `ifmesh rollback RELEASE` (see `ifmesh releases`), or deploy a fixed release',
      'no_previous_release',
    );
  return prev;
}

export async function planRollback(
  o: { state: StateDir; target: string | undefined; reason: string | undefined },
  env: Record<string, string | undefined>,
): Promise<{ plan: RollbackPlan; from: Release; to: Release }> {
  const current = await currentRelease(o.state);
  if (!current)
    throw new UsageError(
      `no current release in ${o.state.root}: nothing to roll back`,
      'deploy one with `ifmesh deploy`',
      'no_previous_release',
    );
  const to = chooseTarget(await listReleases(o.state), current, o.target);
  const pick = (r: Release) => ({ id: r.id, ref: r.ref, deployment_id: r.deployment_id });
  return {
    plan: {
      from: pick(current),
      to: pick(to),
      reason: o.reason ?? 'manual rollback',
      operator: operator(env),
      agents: [...new Set([...current.agents, ...to.agents])],
      code: { from: codeLabel(current), to: codeLabel(to), changes: releaseBin(current) !== releaseBin(to) },
      signaling: releaseBin(current) !== releaseBin(to) ? signalingNames(to.processes) : [],
    },
    from: current,
    to,
  };
}

export interface RollbackReport {
  plan: RollbackPlan;
  applied: boolean;
  trace_id: string | null;
  /** ok: the target runs; restored: it failed its health check and the previous release runs again. */
  outcome: 'ok' | 'restored' | null;
}

export async function rollback(
  o: {
    state: StateDir;
    target: string | undefined;
    reason: string | undefined;
    config: MeshConfig;
    progress: Progress;
    registerTimeoutMs?: number;
  },
  dryRun: boolean,
  ctx: OpContext,
): Promise<RollbackReport> {
  const { plan, from, to } = await planRollback(o, ctx.env);
  if (dryRun) return { plan, applied: false, trace_id: null, outcome: null };
  checkIncidentRecords(o.state);
  return withLock(
    o.state,
    'deploy',
    `rollback to ${to.id}`,
    async () => {
      const sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'rollback' });
      const ev = runEvents(o.config, o.state, 'rollback');
      const meta = {
        reason: plan.reason,
        operator: plan.operator,
        from: from.id,
        to: to.id,
        from_ref: from.ref,
        to_ref: to.ref,
        from_code: plan.code.from,
        to_code: plan.code.to,
      };
      const timeout = o.registerTimeoutMs ?? 20_000;
      const moveAll = async (r: Release, label: string) => {
        const specs = r.agent_specs ?? [];
        o.progress.step(label, 'running', `starting ${specs.length} agents of ${r.id}`);
        for (const id of from.agents.filter((a) => !r.agents.includes(a)))
          await sup.stop(`deploy-agent-${id}`, 5_000);
        for (const spec of specs) await moveAgent(sup, spec);
        const missing = await waitRegistered(sup, r.agents, instanceUrls(r), timeout, ctx);
        o.progress.step(
          label,
          missing.length ? 'fail' : 'ok',
          missing.length
            ? `not registered: ${missing.join(', ')}`
            : `${r.agents.length} agents of ${r.ref} registered`,
        );
        return missing;
      };
      // The target's code under its signaling instances, one at a time, each healthy before the next.
      const roll = async (r: Release) => {
        const rep = await rollSignaling(
          o.state,
          signalingNames(r.processes),
          releaseBin(r),
          `restarted on ${r.ref} (${r.id}) by rollback`,
          o.progress,
          ctx,
        );
        const bad = rep.instances.find((i) => i.outcome === 'failed');
        return bad ? [`${bad.name} (signaling: ${bad.detail.split('\n')[0]})`] : [];
      };
      try {
        ev.log('rollback_started', { deployment_id: to.deployment_id, metadata: meta });
        let missing = await roll(to);
        if (!missing.length) missing = await moveAll(to, `rollback to ${to.ref}`);
        if (missing.length) {
          await roll(from);
          const back = await moveAll(from, `restore ${from.ref}`);
          ev.log('rollback_failed', {
            deployment_id: to.deployment_id,
            metadata: { ...meta, not_registered: missing, restored: back.length === 0 },
          });
          throw new CheckFailedError(
            `rollback to ${to.id} failed its health check (${missing.join(', ')} not registered within ${timeout / 1000} s); ${back.length ? `restoring ${from.id} left ${back.join(', ')} unregistered` : `${from.id} restored and running`}`,
            `see the agents' logs: ifmesh logs deploy-agent-${missing[0]}`,
            'rollback_failed',
          );
        }
        await setCurrentRelease(o.state, to.id);
        await setReleaseOutcome(o.state, from.id, 'rolled_back');
        await setReleaseOutcome(o.state, to.id, 'restored');
        ev.log('deployment_rollback', { deployment_id: from.deployment_id, metadata: meta });
        return { plan, applied: true, trace_id: ev.trace_id, outcome: 'ok' as const };
      } finally {
        await ev.close();
      }
    },
    ctx.clock,
  );
}
