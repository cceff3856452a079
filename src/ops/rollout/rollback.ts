// rollback.sh as a typed procedure: a pure plan (from the current release to the previous or a named
// one), then apply under the deploy lock: stop the current agents, start the target's, health-check
// them; a target that does not come up is undone, so a failed rollback leaves what ran before.
import type { MeshConfig } from '../../config/load.js';
import { CheckFailedError, UsageError } from '../../errors.js';
import { blockedBy, withLock } from '../../state/lock.js';
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
import { checkStateRecords, interruptedRun, type ProcedureJournal, withProcedure } from '../procedure.js';
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
  /**
   * The interrupted rollback this one finishes (run without a target after one was killed): same
   * from and to, even when the killed run had already made the target current.
   */
  continues: { run_id: string; step: string | null } | null;
}

const codeLabel = (r: Release) =>
  r.build ? `${r.build.name}@${r.build.version} (${r.build.id})` : 'the running ifmesh';

const usable = (r: Release) =>
  r.agent_specs !== undefined && r.outcome !== 'failed' && r.outcome !== 'aborted';

/** Pure: the release to go back to, by id or ref, or the newest usable one older than `current`. */
export function chooseTarget(all: Release[], current: Release, wanted: string | undefined): Release {
  if (wanted) {
    // By id: exactly that one. By ref (a label several releases may share): the newest that ran
    // well; one that failed or was aborted as a canary is taken only by its id, never by its name.
    const byRef = [...all].reverse().filter((x) => x.ref === wanted && x.id !== current.id);
    const r = all.find((x) => x.id === wanted) ?? byRef.find(usable);
    const bad = byRef.find((x) => x.outcome === 'failed' || x.outcome === 'aborted');
    if (!r && bad)
      throw new UsageError(
        `${wanted} names only release${byRef.length === 1 ? '' : 's'} that ${byRef.length === 1 ? 'was' : 'were'} not kept: ${byRef.map((x) => `${x.id} (${x.outcome ?? 'unknown'})`).join(', ')}`,
        `to go back to one anyway, name it by id: ifmesh rollback ${bad.id}`,
      );
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
      all.length <= 1
        ? `no previous release to roll back to: ${current.id} is the only one recorded`
        : `no previous release to roll back to: none of the ${all.length - 1} other recorded releases is older than ${current.id} and ran well`,
      'name one with `ifmesh rollback RELEASE` (see `ifmesh releases`), or deploy a fixed release',
      'no_previous_release',
    );
  return prev;
}

/**
 * The interrupted rollback a run without a target finishes: its from and to, while the current
 * release is still one of them. Choosing afresh instead would, once the killed run had made its
 * target current, roll back one release further than anyone asked.
 */
function unfinished(state: StateDir, all: Release[], current: Release) {
  const prev = interruptedRun(state, 'rollback');
  const from = all.find((r) => r.id === prev?.data.from);
  const to = all.find((r) => r.id === prev?.data.to);
  if (!prev || !from || !to || (current.id !== from.id && current.id !== to.id)) return undefined;
  return { from, to, continues: { run_id: prev.run_id, step: prev.step } };
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
  const all = await listReleases(o.state);
  const resume = o.target === undefined ? unfinished(o.state, all, current) : undefined;
  const from = resume?.from ?? current;
  const to = resume?.to ?? chooseTarget(all, current, o.target);
  const pick = (r: Release) => ({ id: r.id, ref: r.ref, deployment_id: r.deployment_id });
  return {
    plan: {
      continues: resume?.continues ?? null,
      from: pick(from),
      to: pick(to),
      reason: o.reason ?? 'manual rollback',
      operator: operator(env),
      agents: [...new Set([...from.agents, ...to.agents])],
      code: { from: codeLabel(from), to: codeLabel(to), changes: releaseBin(from) !== releaseBin(to) },
      signaling: releaseBin(from) !== releaseBin(to) ? signalingNames(to.processes) : [],
    },
    from,
    to,
  };
}

export interface RollbackReport {
  plan: RollbackPlan;
  applied: boolean;
  trace_id: string | null;
  /** ok: the target runs; restored: it failed its health check and the previous release runs again. */
  outcome: 'ok' | 'restored' | null;
  /**
   * A dry run's warning: the deploy lock is held now (an incident's hold, a deploy or canary under
   * way), so the rollback itself would refuse; what releases it, when the holder said.
   */
  blocked_by: { holder: string; pid: number; release_hint: string | null } | null;
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
  if (dryRun)
    return {
      plan,
      applied: false,
      trace_id: null,
      outcome: null,
      blocked_by: await blockedBy(o.state, 'deploy'),
    };
  checkStateRecords(o.state);
  return withLock(
    o.state,
    'deploy',
    `rollback to ${to.id}`,
    () =>
      withProcedure(
        o.state,
        'rollback',
        {
          summary: `rollback from ${from.id} (${from.ref}) to ${to.id} (${to.ref})`,
          // Without a target it finishes this very rollback (planRollback's unfinished).
          rerun: 'ifmesh rollback',
          data: { from: from.id, to: to.id },
        },
        ctx,
        apply,
      ),
    ctx.clock,
  );

  async function apply(journal: ProcedureJournal<'rollback'>): Promise<RollbackReport> {
    journal.step('locked');
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
      if (!missing.length) {
        journal.step('signaling_rolled');
        missing = await moveAll(to, `rollback to ${to.ref}`);
      }
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
      journal.step('agents_moved');
      await setCurrentRelease(o.state, to.id);
      journal.step('current_set');
      await setReleaseOutcome(o.state, from.id, 'rolled_back');
      await setReleaseOutcome(o.state, to.id, 'restored');
      ev.log('deployment_rollback', { deployment_id: from.deployment_id, metadata: meta });
      return { plan, applied: true, trace_id: ev.trace_id, outcome: 'ok' as const, blocked_by: null };
    } finally {
      await ev.close();
    }
  }
}
