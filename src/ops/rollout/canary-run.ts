// The canary's runner: a state machine over CanaryState.step (canary-state.ts), persisted after
// every action. `run()` advances it until the canary settles; a fresh canary, `canary resume`, and
// `canary promote`/`abort` of a canary without a live runner all drive the same machine from the
// state they find, so a runner killed anywhere is continued or undone by the same code.
import type { MeshConfig } from '../../config/load.js';
import { InterruptedError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import { failedChecks } from '../../ui/rollout.js';
import { operator, type Release, recordRelease, releaseBin } from '../deploy/releases.js';
import { Supervisor } from '../fleet/supervisor.js';
import { PAUSE_ENV, PROCEDURE_STEPS, pausePoint } from '../procedure.js';
import { rollSignaling, signalingNames } from '../release/roll.js';
import type { OpContext } from '../shared.js';
import { agentProcessName, instanceUrls, moveAgent, waitRegistered } from './agents.js';
import { evaluateGates, logOffsets, measure, restartCounts } from './analysis.js';
import { type CanaryState, type CanaryStep, takeRequest, writeCanary } from './canary-state.js';
import type { RunEvents } from './events.js';
import {
  type AnalysisProgress,
  describeGate,
  freshProgress,
  type Measurement,
  runAnalysis,
} from './measurement.js';

/** Where IFMESH_PAUSE_AT=canary:<point> stops a runner: each right after the state records it. */
export const PAUSE_POINTS = PROCEDURE_STEPS.canary;
export type PausePoint = (typeof PAUSE_POINTS)[number];

export interface RunnerOptions {
  state: StateDir;
  config: MeshConfig;
  progress: Progress;
  registerTimeoutMs: number;
}

const registeredGate = (missing: string[]): Measurement => ({
  gate: 'agents_registered',
  status: 'failed',
  value: missing.join(', '),
  threshold: 'all registered',
});

export function describeStep(step: CanaryStep): string {
  switch (step.kind) {
    case 'phase':
      return `starting phase ${step.phase + 1}`;
    case 'move':
      return `moving phase ${step.phase + 1}'s agents`;
    case 'analyse':
      return `analysing phase ${step.phase + 1}`;
    case 'promote':
      return 'promoting';
    case 'rollback':
      return `rolling back (${step.reason})`;
    case 'done':
      return 'done';
  }
}

export class CanaryRunner {
  readonly sup: Supervisor;

  constructor(
    readonly s: CanaryState,
    readonly o: RunnerOptions,
    readonly ev: RunEvents,
    readonly ctx: OpContext,
  ) {
    this.sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'canary' });
  }

  private get plan() {
    return this.s.plan;
  }

  async save(patch: Partial<CanaryState>): Promise<void> {
    Object.assign(this.s, patch, { updated_at: new Date(this.ctx.clock.now()).toISOString() });
    await writeCanary(this.o.state, this.s);
  }

  /**
   * A crash drill (and the tests' way to kill a runner at an exact boundary): with
   * IFMESH_PAUSE_AT=canary:<point> (src/ops/procedure.ts; the older IFMESH_CANARY_PAUSE_AT=<point>
   * still works) the runner stops itself (SIGSTOP) once the state holds that point; SIGKILL it
   * then, or SIGCONT to let it go on.
   */
  private pause(point: PausePoint): void {
    const legacy = this.ctx.env.IFMESH_CANARY_PAUSE_AT;
    pausePoint(legacy ? { [PAUSE_ENV]: `canary:${legacy}` } : this.ctx.env, 'canary', point);
  }

  log(name: string, fields: Record<string, unknown>): void {
    this.ev.log(name, {
      deployment_id: this.plan.deployment_id,
      metadata: { canary_id: this.plan.canary_id, ...fields },
    });
  }

  /** Advances the machine until the canary completes, fails, is aborted or frozen. */
  async run(): Promise<void> {
    try {
      while (this.s.status === 'progressing') await this.advance();
    } catch (err) {
      if (this.ctx.signal?.aborted || err instanceof InterruptedError) {
        // Interrupted on purpose: the state says where, for `resume` or `abort` to take it from there.
        await this.save({
          message: `interrupted while ${describeStep(this.s.step)}: \`ifmesh canary resume\` goes on, \`ifmesh canary abort\` restores ${this.plan.stable.id}`,
        });
        throw err;
      }
      if (this.s.status === 'progressing' && this.s.step.kind !== 'rollback') {
        await this.enterRollback('failed', `canary stopped: ${(err as Error).message}`, null);
        try {
          while (this.s.status === 'progressing') await this.advance();
        } catch {
          // What this leaves undone stays in the state, for `canary abort` or `resume` to finish.
        }
      }
      throw err;
    } finally {
      if (this.s.status !== 'progressing' && this.s.pid !== 0) await this.save({ pid: 0, lock_token: null });
    }
  }

  private async advance(): Promise<void> {
    const step = this.s.step;
    switch (step.kind) {
      case 'phase':
        return this.beginPhase(step.phase);
      case 'move':
        return this.movePhase(step.phase);
      case 'analyse':
        return this.analyse(step.phase);
      case 'promote':
        return this.promote(step.how);
      case 'rollback':
        return this.rollBack(step);
      case 'done':
        throw new Error(`canary ${this.plan.canary_id} is ${this.s.status} with nothing left to do`);
    }
  }

  /**
   * Moves `ids` one at a time onto the candidate's specs (or back onto the stable's), recording each
   * before (in flight) and after, then waits for `check` to run and register; returns those missing.
   */
  private async moveAgents(
    ids: string[],
    to: 'candidate' | 'stable',
    check: string[],
    label: string,
    afterEach?: () => void,
  ): Promise<string[]> {
    const release: Release = to === 'candidate' ? this.s.candidate_release : this.s.stable_release;
    const specs = new Map((release.agent_specs ?? []).map((x) => [x.agent_id, x]));
    if (ids.length)
      this.o.progress.step(label, 'running', `moving ${ids.join(', ')} to ${release.ref} (${release.id})`);
    for (const id of ids) {
      const spec = specs.get(id);
      if (!spec) throw new Error(`release ${release.id} has no spec for agent ${id}`);
      await this.save({ in_flight: id });
      await moveAgent(this.sup, spec);
      // Counted right after its start, before any wait: a candidate that crashes at boot and is
      // brought back before it registers has restarted since, and fails agents_healthy.
      await this.save({
        restarts_at_move: { ...this.s.restarts_at_move, ...restartCounts(this.sup, [id]) },
        in_flight: null,
        on_candidate:
          to === 'candidate'
            ? [...new Set([...this.s.on_candidate, id])]
            : this.s.on_candidate.filter((x) => x !== id),
      });
      afterEach?.();
    }
    const missing = await waitRegistered(
      this.sup,
      check,
      instanceUrls(this.s.stable_release),
      this.o.registerTimeoutMs,
      this.ctx,
    );
    this.o.progress.step(
      label,
      missing.length ? 'fail' : 'ok',
      missing.length ? `not registered: ${missing.join(', ')}` : `${check.join(', ')} on ${release.ref}`,
    );
    return missing;
  }

  private async beginPhase(i: number): Promise<void> {
    const phase = this.plan.phases[i]!;
    if (!phase.analysis) return this.save({ step: { kind: 'promote', how: 'analysis passed' } });
    const baseline = {
      since: new Date(this.ctx.clock.now()).toISOString(),
      log_offsets: await logOffsets(this.sup, phase.agents),
    };
    this.log('canary_phase_started', { phase: i + 1, step: phase.step, agents: phase.new_agents });
    await this.save({
      phase: i,
      step: { kind: 'move', phase: i },
      analysis: { ...freshProgress(), ...baseline },
      message: `phase ${i + 1}: ${phase.step}`,
    });
    this.pause('phase_started');
  }

  private async movePhase(i: number): Promise<void> {
    const phase = this.plan.phases[i]!;
    const todo = phase.new_agents.filter((id) => !this.s.on_candidate.includes(id));
    const missing = await this.moveAgents(
      todo,
      'candidate',
      phase.new_agents,
      `phase ${i + 1} (${phase.step})`,
    );
    if (missing.length) {
      // Why, from the agents' own logs (an unreadable key, a refused registration): the last line
      // of each says more than "did not register".
      const why = missing
        .map((id) => {
          const last = this.sup
            .tail(agentProcessName(id), 5)
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean)
            .at(-1);
          return last ? `; ${id}'s log ends: ${last.slice(0, 200)}` : '';
        })
        .join('');
      return this.failOrFreeze(
        `phase ${i + 1}: ${missing.join(', ')} did not register on the candidate${why}`,
        registeredGate(missing),
      );
    }
    await this.save({
      step: { kind: 'analyse', phase: i },
      message: `phase ${i + 1}: ${phase.step}, analysing`,
    });
    this.pause('agents_moved');
  }

  private async analyse(i: number): Promise<void> {
    const phase = this.plan.phases[i]!;
    const a = this.s.analysis ?? {
      ...freshProgress(),
      since: new Date(this.ctx.clock.now()).toISOString(),
      log_offsets: await logOffsets(this.sup, phase.agents),
    };
    // Agents moved by an older ifmesh have no count yet: from now, and kept for a resume.
    const uncounted = phase.agents.filter((id) => this.s.restarts_at_move?.[id] === undefined);
    if (uncounted.length)
      await this.save({
        restarts_at_move: { ...this.s.restarts_at_move, ...restartCounts(this.sup, uncounted) },
      });
    const restartsAtStart = this.s.restarts_at_move ?? {};
    const { analysis: rules } = this.plan;
    const witness = this.o.config.witnessUrl
      ? { url: this.o.config.witnessUrl, token: this.ctx.env.WITNESS_QUERY_TOKEN }
      : null;
    const outcome = await runAnalysis({
      checks: rules.checks,
      intervalMs: rules.interval_ms,
      rules,
      progress: a,
      clock: this.ctx.clock,
      signal: this.ctx.signal,
      request: () => takeRequest(this.o.state, this.plan.canary_id),
      evaluate: async () =>
        evaluateGates(
          await measure({
            sup: this.sup,
            agents: phase.agents,
            instances: instanceUrls(this.s.stable_release),
            since: a.since,
            logOffsets: a.log_offsets,
            restartsAtStart: restartsAtStart,
            witness,
            dispatcher: this.ctx.dispatcher,
            signal: this.ctx.signal,
          }),
          rules.thresholds,
        ),
      onCheck: async (p: AnalysisProgress, c) => {
        const notOk = c.gates.filter((g) => g.status !== 'ok');
        this.o.progress.info(
          `  check ${p.checks}/${rules.checks} ${c.at}: ${c.status}${notOk.length ? ` (${notOk.map((g) => `${g.gate} ${g.status}${g.value !== null ? ` ${g.value}` : ''}`).join(', ')})` : ''}; ${failedChecks(p.failures, rules.failure_limit)}`,
        );
        this.log('canary_analysis', {
          phase: i + 1,
          check: p.checks,
          status: c.status,
          gates: c.gates.map((g) => ({ gate: g.gate, status: g.status, value: g.value })),
        });
        await this.save({ analysis: { ...a, ...p } });
        this.pause('measured');
      },
    });
    switch (outcome.result) {
      case 'passed':
        return this.save({ step: { kind: 'phase', phase: i + 1 } });
      case 'promote':
        return this.save({ step: { kind: 'promote', how: 'promoted by hand' } });
      case 'abort':
        return this.enterRollback('aborted', 'aborted by hand', null);
    }
    return this.failOrFreeze(`analysis ${outcome.result} in phase ${i + 1}: ${outcome.reason}`, outcome.gate);
  }

  /** A failed phase: rolled back, or with --freeze-on-failure left as it is for a person to look at. */
  private async failOrFreeze(reason: string, gate: Measurement | null): Promise<void> {
    if (!this.plan.analysis.freeze_on_failure) return this.enterRollback('failed', reason, gate);
    this.log('canary_frozen', { reason, gate });
    // Agents that never registered on the candidate cannot be promoted onto it (canary.ts refuses).
    const next =
      gate?.gate === 'agents_registered'
        ? '`ifmesh canary abort` rolls it back (its agents never registered: it cannot be promoted)'
        : '`ifmesh canary abort` rolls it back, `promote` goes on';
    await this.save({
      status: 'frozen',
      failed_gate: gate,
      message: `${reason}; frozen for inspection: ${next}`,
    });
  }

  /** Every agent onto the candidate, recorded as the current release. */
  private async promote(how: string): Promise<void> {
    const last = this.plan.phases.length - 1;
    const all = this.s.stable_release.agents;
    if (this.s.phase !== last) await this.save({ phase: last, message: `promoting (${how})` });
    const todo = all.filter((id) => !this.s.on_candidate.includes(id));
    const missing = await this.moveAgents(todo, 'candidate', all, `phase ${last + 1} (100%)`, () =>
      this.pause('promoting'),
    );
    if (missing.length)
      return this.enterRollback('failed', 'agents did not register after promotion', registeredGate(missing));
    // Other code than the stable release's: the signaling instances roll onto it, one at a time.
    const roll = await this.rollSignaling(this.s.candidate_release, 'promoted');
    if (roll) return this.enterRollback('failed', roll, null);
    // Recorded before the state says completed: a runner killed in between records it again, alike.
    await recordRelease(
      this.o.state,
      { ...this.s.candidate_release, outcome: 'promoted', who: operator(this.ctx.env) },
      this.s.keep_releases,
    );
    await this.save({
      status: 'completed',
      step: { kind: 'done' },
      message: `${this.plan.candidate.id} promoted (${how}) and current`,
    });
    this.log('deployment_promoted', { how, release: this.plan.candidate.id, ref: this.plan.candidate.ref });
  }

  /**
   * Starts rolling back. The agent a killed runner was moving may run either release: it counts as a
   * canary agent, and goes back to the stable release with the others.
   */
  async enterRollback(status: 'failed' | 'aborted', reason: string, gate: Measurement | null): Promise<void> {
    const agents = [...new Set([...this.s.on_candidate, ...(this.s.in_flight ? [this.s.in_flight] : [])])];
    await this.save({
      status: 'progressing',
      step: { kind: 'rollback', status, reason, agents },
      on_candidate: agents,
      in_flight: null,
      failed_gate: gate ?? this.s.failed_gate,
      message: `${reason}; rolling back ${agents.join(', ') || 'nothing'}`,
    });
  }

  /**
   * The signaling instances onto `r`'s code when they run another (a promotion of other code, or its
   * rollback), then every agent registered again; a failure, described, or null.
   */
  private async rollSignaling(r: Release, why: string): Promise<string | null> {
    const names = signalingNames(this.s.stable_release.processes);
    const roll = await rollSignaling(
      this.o.state,
      names,
      releaseBin(r),
      `restarted on ${r.ref} (${r.id}): canary ${this.plan.canary_id} ${why}`,
      this.o.progress,
      this.ctx,
    );
    if (!roll.instances.some((i) => i.outcome === 'restarted' || i.outcome === 'failed')) return null;
    this.log('canary_signaling_rolled', {
      release: r.id,
      instances: roll.instances.map((i) => ({ name: i.name, outcome: i.outcome })),
    });
    if (!roll.ok) {
      const bad = roll.instances.find((i) => i.outcome === 'failed')!;
      return `signaling ${bad.name} did not come back on ${r.ref}: ${bad.detail}`;
    }
    const all = this.s.stable_release.agents;
    const missing = await waitRegistered(
      this.sup,
      all,
      instanceUrls(this.s.stable_release),
      this.o.registerTimeoutMs,
      this.ctx,
    );
    return missing.length ? `${missing.join(', ')} did not register after signaling moved to ${r.ref}` : null;
  }

  /** The canary agents back on the stable release, logged as deployment_rollback naming the cause. */
  private async rollBack(step: Extract<CanaryStep, { kind: 'rollback' }>): Promise<void> {
    const missing = await this.moveAgents([...this.s.on_candidate], 'stable', step.agents, 'rollback');
    // Signaling moved at a promotion that then failed goes back too (a no-op when it never moved).
    const roll = await this.rollSignaling(this.s.stable_release, 'rolled back');
    await recordRelease(
      this.o.state,
      { ...this.s.candidate_release, outcome: step.status },
      this.s.keep_releases,
      false,
    );
    await this.save({
      status: step.status,
      step: { kind: 'done' },
      on_candidate: [],
      message: missing.length
        ? `${step.reason}; rolled back, but ${missing.join(', ')} did not register on the stable release${roll ? `; ${roll}` : ''}`
        : roll
          ? `${step.reason}; rolled back, but ${roll}`
          : `${step.reason}; ${step.agents.join(', ') || 'no agent'} on ${this.plan.stable.ref} (${this.plan.stable.id})`,
    });
    const gate = this.s.failed_gate;
    this.log('deployment_rollback', {
      reason: step.reason,
      gate: gate?.gate ?? null,
      gate_status: gate?.status ?? null,
      value: gate?.value ?? null,
      threshold: gate?.threshold ?? null,
      detail: gate ? describeGate(gate) : null,
      from: this.plan.candidate.id,
      to: this.plan.stable.id,
      agents: step.agents,
      operator: operator(this.ctx.env),
    });
  }
}
