// canary-deployment.sh as a typed procedure: a pure plan (stable release + changes = candidate, in
// phases by agent count), then apply under the deploy lock. Each phase moves agents onto the candidate,
// then analysis gates it on the canary agents' own signals; a failure rolls the canary agents back to
// the stable release (or freezes them for inspection), success records the candidate as current.
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { MeshConfig } from '../../config/load.js';
import { SECRET_KEYS } from '../../config/schema.js';
import { CheckFailedError, UsageError } from '../../errors.js';
import { isAlive } from '../../exec/pid.js';
import { withLock } from '../../state/lock.js';
import type { Progress } from '../../ui/progress.js';
import { waitFor } from '../../util/wait.js';
import { loadAgentConfigs } from '../deploy/deploy.js';
import { type AgentSpec, currentRelease, operator, type Release, recordRelease } from '../deploy/releases.js';
import { Supervisor } from '../fleet/supervisor.js';
import type { OpContext } from '../shared.js';
import { instanceUrls, moveAgent, waitRegistered } from './agents.js';
import {
  DEFAULT_GATES,
  evaluateGates,
  type GateResult,
  logOffsets,
  measure,
  runAnalysis,
} from './analysis.js';
import {
  CANARY_EXIT,
  type CanaryPhase,
  type CanaryPlan,
  type CanaryState,
  type PublicCanaryState,
  publicState,
  readCanary,
  requestCanary,
  takeRequest,
  writeCanary,
} from './canary-state.js';
import { type RunEvents, runEvents } from './events.js';

export interface CanaryOptions {
  stateDir: string;
  stage: 'staging' | 'production';
  canaryAgents: number | undefined;
  steps: string[];
  monitorMs: number;
  intervalMs: number;
  failureLimit: number;
  freezeOnFailure: boolean;
  set: Record<string, string>;
  agentsDir: string | undefined;
  release: string | undefined;
  config: MeshConfig;
  cwd: string;
  progress: Progress;
  /** How long a moved agent may take to register. */
  registerTimeoutMs?: number;
}

/** Pure: agent counts per phase from steps such as 1,25%,100% (never shrinking, ending at all). */
export function phaseCounts(steps: string[], total: number, first: number | undefined): number[] {
  const counts: number[] = [];
  for (const [i, raw] of steps.entries()) {
    const s = raw.trim();
    const m = /^(\d+)(%?)$/.exec(s);
    if (!m) throw new UsageError(`--steps: "${s}" is not a count or a percentage`, 'e.g. --steps 1,25%,100%');
    let n = m[2] ? Math.ceil((Number(m[1]) / 100) * total) : Number(m[1]);
    if (i === 0 && first !== undefined) n = first;
    n = Math.min(total, Math.max(n, counts.at(-1) ?? 1, 1));
    if (n !== counts.at(-1)) counts.push(n);
  }
  if (counts.at(-1) !== total) counts.push(total);
  return counts;
}

/** Pure: the canary's plan from the stable release and the candidate's specs. */
export function buildCanaryPlan(
  o: Pick<
    CanaryOptions,
    | 'stage'
    | 'canaryAgents'
    | 'steps'
    | 'monitorMs'
    | 'intervalMs'
    | 'failureLimit'
    | 'freezeOnFailure'
    | 'set'
    | 'agentsDir'
    | 'release'
  >,
  stable: Release,
  candidateHash: string,
  now: number,
  rand: string,
): CanaryPlan {
  const ids = stable.agents;
  const counts = phaseCounts(o.steps, ids.length, o.canaryAgents);
  const phases: CanaryPhase[] = counts.map((n, i) => ({
    step: i === counts.length - 1 ? '100%' : `${n}/${ids.length}`,
    agents: ids.slice(0, n),
    new_agents: ids.slice(i === 0 ? 0 : counts[i - 1], n),
    analysis: i < counts.length - 1,
  }));
  const id = `canary-${new Date(now).toISOString().replace(/[:.]/g, '-')}-${rand}`;
  return {
    canary_id: id,
    deployment_id: id,
    stage: o.stage,
    stable: { id: stable.id, ref: stable.ref, config_hash: stable.config_hash },
    candidate: {
      id,
      ref: o.release ?? stable.ref,
      config_hash: candidateHash,
      changes: Object.fromEntries(
        Object.entries(o.set).map(([k, v]) => [k, SECRET_KEYS.has(k) ? '[redacted]' : v]),
      ),
      agents_dir: o.agentsDir ?? null,
    },
    phases,
    analysis: {
      checks: Math.max(1, Math.floor(o.monitorMs / o.intervalMs)),
      interval_ms: o.intervalMs,
      failure_limit: o.failureLimit,
      freeze_on_failure: o.freezeOnFailure,
      thresholds: DEFAULT_GATES,
    },
  };
}

async function candidateSpecs(o: CanaryOptions, stable: Release): Promise<AgentSpec[]> {
  if (!stable.agent_specs)
    throw new UsageError(
      `release ${stable.id} was recorded before ifmesh kept how its agents start`,
      'deploy once more with `ifmesh deploy`, then run the canary',
    );
  const byId = new Map<string, string>();
  if (o.agentsDir)
    for (const c of await loadAgentConfigs(o.agentsDir, o.cwd))
      byId.set(c.agentId, path.isAbsolute(c.file) ? c.file : path.join(o.cwd, c.file));
  return stable.agent_specs.map((s) => {
    const config = o.agentsDir ? byId.get(s.agent_id) : s.config;
    if (!config)
      throw new UsageError(
        `${o.agentsDir} has no config for agent ${s.agent_id} of the stable release`,
        'a canary changes the agents the release runs; add its config or use the stable directory',
      );
    return { ...s, config, env: { ...s.env, ...o.set } };
  });
}

export async function planCanary(o: CanaryOptions, ctx: Pick<OpContext, 'clock'>) {
  const stable = await currentRelease(o.stateDir);
  if (!stable)
    throw new UsageError(`no current release in ${o.stateDir}`, 'deploy one first with `ifmesh deploy`');
  const specs = await candidateSpecs(o, stable);
  const hash = createHash('sha256')
    .update(JSON.stringify({ stable: stable.config_hash, specs: specs.map((s) => [s.config, s.env]) }))
    .digest('hex')
    .slice(0, 16);
  const plan = buildCanaryPlan(o, stable, hash, ctx.clock.now(), randomBytes(2).toString('hex'));
  const candidate: Release = {
    ...stable,
    id: plan.canary_id,
    deployment_id: plan.deployment_id,
    ref: plan.candidate.ref,
    config_hash: hash,
    created_at: new Date(ctx.clock.now()).toISOString(),
    agent_specs: specs,
  };
  return { plan, stable, candidate };
}

/** A canary run's moving parts, shared by the runner and by promote/abort of a frozen canary. */
class Rollout {
  readonly sup: Supervisor;
  constructor(
    readonly s: CanaryState,
    readonly o: { stateDir: string; progress: Progress; registerTimeoutMs: number },
    readonly ev: RunEvents,
    readonly ctx: OpContext,
  ) {
    this.sup = new Supervisor(o.stateDir, { clock: ctx.clock, owner: 'canary' });
  }

  async save(patch: Partial<CanaryState>): Promise<void> {
    Object.assign(this.s, patch, { updated_at: new Date(this.ctx.clock.now()).toISOString() });
    await writeCanary(this.o.stateDir, this.s);
  }

  step(name: string, fields: Record<string, unknown>): void {
    this.ev.log(name, {
      deployment_id: this.s.plan.deployment_id,
      metadata: { canary_id: this.s.plan.canary_id, ...fields },
    });
  }

  /** Moves `ids` onto `release`'s specs and waits for them to register; returns the missing. */
  async move(ids: string[], release: Release, label: string): Promise<string[]> {
    const specs = new Map((release.agent_specs ?? []).map((x) => [x.agent_id, x]));
    this.o.progress.step(label, 'running', `moving ${ids.join(', ')} to ${release.ref} (${release.id})`);
    for (const id of ids) await moveAgent(this.sup, specs.get(id)!);
    const missing = await waitRegistered(
      this.sup,
      ids,
      instanceUrls(release),
      this.o.registerTimeoutMs,
      this.ctx,
    );
    this.o.progress.step(
      label,
      missing.length ? 'fail' : 'ok',
      missing.length ? `not registered: ${missing.join(', ')}` : `${ids.join(', ')} on ${release.ref}`,
    );
    return missing;
  }

  /** The canary agents back on the stable release, logged as deployment_rollback naming the cause. */
  async rollBack(status: 'failed' | 'aborted', reason: string, gate: GateResult | null): Promise<void> {
    const ids = this.s.on_candidate;
    const missing = await this.move(ids, this.s.stable_release, 'rollback');
    this.ev.log('deployment_rollback', {
      deployment_id: this.s.plan.deployment_id,
      metadata: {
        canary_id: this.s.plan.canary_id,
        reason,
        gate: gate?.gate ?? null,
        value: gate?.value ?? null,
        threshold: gate?.threshold ?? null,
        from: this.s.plan.candidate.id,
        to: this.s.plan.stable.id,
        agents: ids,
        operator: operator(this.ctx.env),
      },
    });
    await recordRelease(this.o.stateDir, { ...this.s.candidate_release, outcome: status }, 10, false);
    await this.save({
      status,
      on_candidate: [],
      failed_gate: gate,
      message: missing.length
        ? `${reason}; rolled back, but ${missing.join(', ')} did not register on the stable release`
        : `${reason}; ${ids.join(', ')} rolled back to ${this.s.plan.stable.ref}`,
    });
  }

  /** Every agent onto the candidate, recorded as the current release. */
  async promote(how: string): Promise<void> {
    const rest = this.s.stable_release.agents.filter((id) => !this.s.on_candidate.includes(id));
    const last = this.s.plan.phases.length - 1;
    await this.save({ phase: last, on_candidate: [...this.s.on_candidate, ...rest] });
    const missing = rest.length
      ? await this.move(rest, this.s.candidate_release, `phase ${last + 1} (100%)`)
      : [];
    if (missing.length)
      return this.rollBack('failed', `agents did not register after promotion`, {
        gate: 'agents_registered',
        ok: false,
        value: missing.join(', '),
        threshold: 'all registered',
      });
    await recordRelease(this.o.stateDir, {
      ...this.s.candidate_release,
      outcome: 'promoted',
      who: operator(this.ctx.env),
    });
    this.step('deployment_promoted', {
      how,
      release: this.s.plan.candidate.id,
      ref: this.s.plan.candidate.ref,
    });
    await this.save({
      status: 'completed',
      message: `${this.s.plan.candidate.id} promoted (${how}) and current`,
    });
  }
}

export async function runCanary(o: CanaryOptions, dryRun: boolean, ctx: OpContext) {
  const { plan, stable, candidate } = await planCanary(o, ctx);
  if (dryRun) return { plan, applied: false as const, state: null };
  return withLock(
    o.stateDir,
    'deploy',
    `canary ${plan.canary_id}`,
    async () => {
      const ev = runEvents(o.config, o.stateDir, 'canary');
      const now = new Date(ctx.clock.now()).toISOString();
      const s: CanaryState = {
        plan,
        trace_id: ev.trace_id,
        pid: process.pid,
        status: 'progressing',
        phase: 0,
        on_candidate: [],
        failures: 0,
        last_check: null,
        failed_gate: null,
        message: 'starting',
        started_at: now,
        updated_at: now,
        candidate_release: { ...candidate, who: operator(ctx.env) },
        stable_release: stable,
      };
      const r = new Rollout(
        s,
        { stateDir: o.stateDir, progress: o.progress, registerTimeoutMs: o.registerTimeoutMs ?? 20_000 },
        ev,
        ctx,
      );
      try {
        await writeCanary(o.stateDir, s);
        r.step('canary_started', {
          stage: plan.stage,
          stable: stable.id,
          candidate: plan.candidate,
          phases: plan.phases.map((p) => p.agents.length),
        });
        for (const [i, phase] of plan.phases.entries()) {
          if (!phase.analysis) {
            await r.promote('analysis passed');
            break;
          }
          await r.save({ phase: i, on_candidate: phase.agents, message: `phase ${i + 1}: ${phase.step}` });
          r.step('canary_phase_started', { phase: i + 1, step: phase.step, agents: phase.new_agents });
          const offsets = await logOffsets(r.sup, phase.agents);
          const since = new Date(ctx.clock.now()).toISOString();
          const missing = await r.move(phase.new_agents, candidate, `phase ${i + 1} (${phase.step})`);
          const outcome = missing.length
            ? ({
                result: 'failed',
                checks: [],
                gate: {
                  gate: 'agents_registered',
                  ok: false,
                  value: missing.join(', '),
                  threshold: 'all registered',
                },
              } as const)
            : await runAnalysis({
                checks: plan.analysis.checks,
                intervalMs: plan.analysis.interval_ms,
                failureLimit: plan.analysis.failure_limit,
                clock: ctx.clock,
                signal: ctx.signal,
                request: () => takeRequest(o.stateDir, plan.canary_id),
                evaluate: async () =>
                  evaluateGates(
                    await measure({
                      sup: r.sup,
                      agents: phase.agents,
                      instances: instanceUrls(stable),
                      since,
                      logOffsets: offsets,
                      witness: o.config.witnessUrl
                        ? { url: o.config.witnessUrl, token: ctx.env.WITNESS_QUERY_TOKEN }
                        : null,
                      dispatcher: ctx.dispatcher,
                      signal: ctx.signal,
                    }),
                    plan.analysis.thresholds,
                  ),
                onCheck: async (c, failures) => {
                  const bad = c.gates.filter((g) => !g.ok);
                  o.progress.info(
                    `  check ${c.at}: ${c.ok ? 'ok' : `failed ${bad.map((g) => `${g.gate}=${g.value}`).join(', ')}`} (${failures}/${plan.analysis.failure_limit} failures allowed)`,
                  );
                  r.step('canary_analysis', {
                    phase: i + 1,
                    ok: c.ok,
                    failed: bad.map((g) => ({ gate: g.gate, value: g.value })),
                  });
                  await r.save({ failures, last_check: c });
                },
              });
          if (outcome.result === 'passed') continue;
          if (outcome.result === 'promote') {
            await r.promote('promoted by hand');
            break;
          }
          if (outcome.result === 'abort') {
            await r.rollBack('aborted', 'aborted by hand', null);
            break;
          }
          const reason = `analysis failed in phase ${i + 1}: ${outcome.gate.gate} = ${outcome.gate.value} (${outcome.gate.threshold})`;
          if (o.freezeOnFailure) {
            r.step('canary_frozen', { reason, gate: outcome.gate });
            await r.save({
              status: 'frozen',
              pid: 0,
              failed_gate: outcome.gate,
              message: `${reason}; frozen for inspection: \`ifmesh canary abort\` rolls it back, \`promote\` goes on`,
            });
          } else await r.rollBack('failed', reason, outcome.gate);
          break;
        }
      } catch (err) {
        if (s.status === 'progressing')
          await r.rollBack('failed', `canary stopped: ${(err as Error).message}`, null).catch(() => {});
        throw err;
      } finally {
        if (s.status !== 'progressing' && s.pid !== 0) await r.save({ pid: 0 });
        await ev.close();
      }
      return { plan, applied: true as const, state: publicState(s) };
    },
    ctx.clock,
  );
}

/**
 * `canary promote` / `abort` from any terminal: a running canary gets a request it acts on within a
 * fraction of its interval; a frozen one (no runner) is promoted or rolled back here, under the lock.
 */
export async function decideCanary(
  o: { stateDir: string; config: MeshConfig; progress: Progress; registerTimeoutMs?: number },
  action: 'promote' | 'abort',
  ctx: OpContext,
): Promise<{ action: typeof action; canary_id: string; handed_to: number | null; state: PublicCanaryState }> {
  const s = await readCanary(o.stateDir);
  if (!s || (s.status !== 'progressing' && s.status !== 'frozen'))
    throw new UsageError(
      s ? `canary ${s.plan.canary_id} is ${s.status}: nothing to ${action}` : `no canary in ${o.stateDir}`,
      'start one with `ifmesh canary --stage staging`',
    );
  if (s.status === 'progressing' && s.pid && isAlive(s.pid)) {
    await requestCanary(o.stateDir, s.plan.canary_id, action);
    return { action, canary_id: s.plan.canary_id, handed_to: s.pid, state: publicState(s) };
  }
  return withLock(
    o.stateDir,
    'deploy',
    `canary ${action} ${s.plan.canary_id}`,
    async () => {
      const ev = runEvents(o.config, o.stateDir, 'canary', s.trace_id);
      const r = new Rollout(
        s,
        { stateDir: o.stateDir, progress: o.progress, registerTimeoutMs: o.registerTimeoutMs ?? 20_000 },
        ev,
        ctx,
      );
      try {
        if (action === 'abort') await r.rollBack('aborted', 'aborted by hand', s.failed_gate);
        else await r.promote('promoted by hand');
      } finally {
        await ev.close();
      }
      if (action === 'promote' && s.status !== 'completed') throw new CheckFailedError(s.message);
      return { action, canary_id: s.plan.canary_id, handed_to: null, state: publicState(s) };
    },
    ctx.clock,
  );
}

/** `canary status`: the state now, or with `watchMs` the state once it settles (or the timeout). */
export async function canaryStatus(
  stateDir: string,
  watchMs: number | undefined,
  ctx: Pick<OpContext, 'clock' | 'signal'>,
) {
  const settled = (s: CanaryState | undefined) => s !== undefined && s.status !== 'progressing';
  let s = await readCanary(stateDir);
  if (!s) throw new UsageError(`no canary in ${stateDir}`, 'start one with `ifmesh canary --stage staging`');
  let timedOut = false;
  if (watchMs !== undefined && !settled(s)) {
    timedOut = !(await waitFor(
      async () => {
        s = await readCanary(stateDir);
        // a runner that died mid-phase never settles the state: say so instead of waiting out the timeout
        return settled(s) || (s !== undefined && s.pid !== 0 && !isAlive(s.pid));
      },
      { timeoutMs: watchMs, intervalMs: 200 },
      ctx.clock,
      ctx.signal,
    ));
  }
  const st = s!;
  const exit = timedOut
    ? CANARY_EXIT.timed_out
    : st.status === 'progressing'
      ? watchMs !== undefined
        ? CANARY_EXIT.failed
        : CANARY_EXIT.progressing_now
      : CANARY_EXIT[st.status];
  return { ...publicState(st), timed_out: timedOut, exit_code: exit };
}
