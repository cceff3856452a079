// canary-deployment.sh as a typed procedure: a pure plan (canary-plan.ts: stable release + changes
// = candidate, in phases by agent count), then apply under the deploy lock. Each phase moves agents
// onto the candidate, then analysis gates it on the canary agents' own measurements; a failed or
// inconclusive analysis rolls the canary agents back to the stable release (or freezes them for
// inspection), success records the candidate as current. The run is a persisted state machine
// (canary-run.ts): a runner killed anywhere is found dead by `canary status` and finished by
// `canary resume` or `canary abort`.
import { randomUUID } from 'node:crypto';
import type { MeshConfig } from '../../config/load.js';
import { CheckFailedError, type ExitCodeValue, UsageError } from '../../errors.js';
import { acquireLock, blockedBy, type HeldLock } from '../../state/lock.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import { waitFor } from '../../util/wait.js';
import { iceServers } from '../agent/ice.js';
import { currentReleaseOrBroken, operator, type Release, sealRelease } from '../deploy/releases.js';
import { checkStateRecords } from '../procedure.js';
import { buildRef, installWithProgress, previewRelease, type SourcePreview } from '../release/install.js';
import type { OpContext } from '../shared.js';
import { type CanaryOptions, DEFAULT_REGISTER_TIMEOUT_MS, planCanary } from './canary-plan.js';
import { CanaryRunner, describeStep } from './canary-run.js';
import {
  CANARY_EXIT,
  type CanaryState,
  type CanaryStatus,
  type PublicCanaryState,
  publicState,
  readCanary,
  requestCanary,
  runnerAlive,
  writeCanary,
} from './canary-state.js';
import { runEvents } from './events.js';
import { checkPromotion, promotionSource, type ReleaseIdentity } from './promotion.js';

interface RunOptions {
  state: StateDir;
  config: MeshConfig;
  progress: Progress;
  registerTimeoutMs?: number | undefined;
}

/**
 * Drives `s` as this process, holding the deploy lock `lock` (released after); `first` acts on the
 * runner before the machine advances (logs the start, or turns the step into a promote or an abort).
 */
async function drive(
  s: CanaryState,
  lock: HeldLock,
  o: RunOptions,
  ctx: OpContext,
  first: (r: CanaryRunner) => void | Promise<void>,
): Promise<void> {
  const ev = runEvents(o.config, o.state, 'canary', s.trace_id);
  const runner = new CanaryRunner(
    s,
    {
      state: o.state,
      config: o.config,
      progress: o.progress,
      // A resumed, promoted or aborted canary keeps the timeout it was started with.
      registerTimeoutMs: o.registerTimeoutMs ?? s.plan.register_timeout_ms ?? DEFAULT_REGISTER_TIMEOUT_MS,
    },
    ev,
    ctx,
  );
  try {
    await runner.save({ pid: process.pid, lock_token: lock.holder.token });
    await first(runner);
    await runner.run();
  } finally {
    await ev.close();
    await lock.release();
  }
}

/** A canary still to finish blocks a new one: its agents may run either release. */
function refuseUnfinished(s: CanaryState | undefined): void {
  if (s && (s.status === 'progressing' || s.status === 'frozen'))
    throw new UsageError(
      `canary ${s.plan.canary_id} is ${s.status === 'frozen' ? 'frozen' : `unfinished (its runner died while ${describeStep(s.step)})`}`,
      s.status === 'frozen'
        ? '`ifmesh canary promote` or `ifmesh canary abort` first'
        : '`ifmesh canary resume` finishes it, `ifmesh canary abort` restores the stable release',
      'canary_unfinished',
    );
}

/** Takes the deploy lock for `fn`: released if `fn` fails, else still held for the caller to drive with. */
async function locked<T>(
  o: { state: StateDir },
  purpose: string,
  ctx: OpContext,
  fn: (lock: HeldLock) => Promise<T>,
) {
  checkStateRecords(o.state);
  const lock = await acquireLock(o.state, 'deploy', purpose, ctx.clock);
  try {
    return await fn(lock);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** The candidate as the promotion check compares it: its name, its code's integrity, its changes. */
const identityOfCandidate = (
  candidate: Release,
  preview: { preview: SourcePreview } | undefined,
): ReleaseIdentity => ({
  ref: candidate.ref,
  integrity: preview?.preview.integrity ?? candidate.build?.integrity,
  changes: candidate.changes,
});

export async function runCanary(given: CanaryOptions, dryRun: boolean, ctx: OpContext) {
  const o = given.promotion ? await promotionSource(given.promotion.gateState, given) : given;
  // The --set changes on this configuration are what the candidate's agents start on: one they
  // would refuse (TURN servers without credentials) fails the plan, dry run included, not the agents.
  if (Object.keys(o.set).length)
    try {
      iceServers(o.config, {});
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      throw new UsageError(
        `the candidate's agents would not start with these --set values: ${err.message}`,
        err.hint,
      );
    }
  // What `--release` would install, for a dry run, and for a gated stage whose promotion check runs
  // before anything is locked, installed or written (a tarball's integrity is known unpacked).
  const preview =
    o.release && (dryRun || o.promotion)
      ? { preview: await previewRelease(o.state, o.release, ctx) }
      : undefined;
  // Planned here only when something needs it before the lock: the dry run's answer, the promotion check.
  const early = dryRun || o.promotion ? await planCanary(o, ctx, preview) : undefined;
  const promotion =
    o.promotion && early
      ? await checkPromotion(identityOfCandidate(early.candidate, preview), o.promotion)
      : null;
  if (dryRun && early) {
    if (promotion) early.plan.promotion = promotion;
    // The real run takes the deploy lock first: say now that it would refuse (an incident's hold).
    const blocked_by = await blockedBy(o.state, 'deploy');
    return { plan: early.plan, applied: false as const, install: null, state: null, blocked_by };
  }
  // Taken before the previous canary is read: a live runner holds it, so only a dead one's state is
  // left. The candidate's code is installed under it too, so no deploy prunes it meanwhile.
  const { s, lock, plan, stable, install } = await locked(o, 'canary', ctx, async (lock) => {
    refuseUnfinished(await readCanary(o.state));
    const install = await installWithProgress(o.state, o.release, o.progress, ctx);
    const { plan, stable, candidate } = await planCanary(
      o,
      ctx,
      install ? { build: buildRef(install.build) } : undefined,
    );
    if (promotion) plan.promotion = promotion;
    const now = new Date(ctx.clock.now()).toISOString();
    const s: CanaryState = {
      plan,
      trace_id: randomUUID(),
      pid: process.pid,
      lock_token: lock.holder.token,
      status: 'progressing',
      step: { kind: 'phase', phase: 0 },
      phase: 0,
      on_candidate: [],
      in_flight: null,
      analysis: null,
      failed_gate: null,
      message: 'starting',
      started_at: now,
      updated_at: now,
      // Sealed before anything is written: the --set secrets go to the secrets file, by name.
      candidate_release: sealRelease(o.state, { ...candidate, who: operator(ctx.env) }),
      stable_release: stable,
      ...(o.keepReleases ? { keep_releases: o.keepReleases } : {}),
    };
    await writeCanary(o.state, s);
    return { s, lock, plan, stable, install };
  });
  await drive(s, lock, o, ctx, (r) =>
    r.log('canary_started', {
      stage: plan.stage,
      promotion: plan.promotion,
      stable: stable.id,
      candidate: plan.candidate,
      phases: plan.phases.map((p) => p.agents.length),
    }),
  );
  return { plan, applied: true as const, install, state: publicState(s) };
}

const noCanary = (state: StateDir) =>
  new UsageError(`no canary in ${state.root}`, 'start one with `ifmesh canary`');

/** `canary resume`: a canary whose runner died goes on from the step its state records. */
export async function resumeCanary(o: RunOptions, ctx: OpContext) {
  const { s, lock } = await locked(o, 'canary resume', ctx, async (lock) => {
    const s = await readCanary(o.state);
    if (!s) throw noCanary(o.state);
    if (s.status !== 'progressing')
      throw new UsageError(
        `canary ${s.plan.canary_id} is ${s.status}: nothing to resume`,
        s.status === 'frozen' ? '`ifmesh canary promote` or `ifmesh canary abort`' : undefined,
      );
    return { s, lock };
  });
  const from = describeStep(s.step);
  await drive(s, lock, o, ctx, (r) => {
    o.progress.info(`resuming ${s.plan.canary_id}: ${from}`);
    r.log('canary_resumed', { step: s.step, on_candidate: s.on_candidate, in_flight: s.in_flight });
  });
  return { canary_id: s.plan.canary_id, resumed_from: from, state: publicState(s) };
}

/**
 * `canary promote` / `abort` from any terminal: a live runner gets a request it acts on within a
 * fraction of its interval; a frozen canary, or one whose runner died, is promoted or rolled back by
 * this process, from the state its runner left.
 */
export async function decideCanary(
  o: RunOptions,
  action: 'promote' | 'abort',
  ctx: OpContext,
): Promise<{ action: typeof action; canary_id: string; handed_to: number | null; state: PublicCanaryState }> {
  const check = (s: CanaryState | undefined): CanaryState => {
    if (!s) throw noCanary(o.state);
    if (s.status !== 'progressing' && s.status !== 'frozen')
      throw new UsageError(
        `canary ${s.plan.canary_id} is ${s.status}: nothing to ${action}`,
        'start one with `ifmesh canary`',
      );
    if (action === 'promote' && s.step.kind === 'rollback')
      throw new UsageError(
        `canary ${s.plan.canary_id} is rolling back (${s.step.reason}): it cannot be promoted`,
        '`ifmesh canary resume` or `ifmesh canary abort` finishes the rollback',
      );
    // Frozen because its agents never came up on the candidate: promoting would move every agent
    // onto a release none of them could register with (a drill's fleet went dark for 20 s).
    if (action === 'promote' && s.status === 'frozen' && s.failed_gate?.gate === 'agents_registered')
      throw new UsageError(
        `canary ${s.plan.canary_id} froze because its candidate agents never registered (${s.failed_gate.value ?? 'none registered'}): it cannot be promoted`,
        "`ifmesh canary abort` rolls it back; fix the candidate (its agents' logs say why), then run the canary again",
      );
    return s;
  };
  const seen = check(await readCanary(o.state));
  if (seen.status === 'progressing' && (await runnerAlive(o.state, seen))) {
    await requestCanary(o.state, seen.plan.canary_id, action);
    return { action, canary_id: seen.plan.canary_id, handed_to: seen.pid, state: publicState(seen) };
  }
  const { s, lock } = await locked(o, `canary ${action} ${seen.plan.canary_id}`, ctx, async (lock) => ({
    s: check(await readCanary(o.state)),
    lock,
  }));
  const dead = s.status === 'progressing';
  await drive(s, lock, o, ctx, async (r) => {
    if (action === 'promote')
      await r.save({ status: 'progressing', step: { kind: 'promote', how: 'promoted by hand' } });
    else if (s.step.kind !== 'rollback')
      await r.enterRollback(
        'aborted',
        `aborted by hand${dead ? ' (its runner had died)' : ''}`,
        s.failed_gate,
      );
  });
  if (action === 'promote' && s.status !== 'completed') throw new CheckFailedError(s.message);
  return { action, canary_id: s.plan.canary_id, handed_to: null, state: publicState(s) };
}

export interface CanaryStatusReport extends Omit<PublicCanaryState, 'status'> {
  /** The state's status, or `runner_died`: progressing, but the process running it is gone. */
  status: CanaryStatus | 'runner_died';
  timed_out: boolean;
  exit_code: ExitCodeValue;
  /** What to do next, when something is to be done. */
  hint: string | null;
  /**
   * A settled canary whose release is no longer current (a rollback or deploy came after it): the
   * release the fleet runs now. The canary's agent lists are from when it ended.
   */
  fleet_since: { release_id: string; ref: string } | null;
}

/** How often `canary status --watch` looks at the state. */
export const WATCH_INTERVAL_MS = 500;

/**
 * `canary status`: the state now, or with `watchMs` the state once it settles (or the timeout).
 * Watching, `onLook` gets the report at every look (every `intervalMs`), the last one included.
 */
export async function canaryStatus(
  state: StateDir,
  watchMs: number | undefined,
  ctx: Pick<OpContext, 'clock' | 'signal'>,
  onLook?: (r: CanaryStatusReport) => void,
  intervalMs = WATCH_INTERVAL_MS,
): Promise<CanaryStatusReport> {
  let s = await readCanary(state);
  if (!s) throw noCanary(state);
  let dead = s.status === 'progressing' && !(await runnerAlive(state, s));
  let timedOut = false;
  if (watchMs !== undefined && s.status === 'progressing' && !dead) {
    timedOut = !(await waitFor(
      async () => {
        s = (await readCanary(state)) ?? s;
        // a runner that died never settles the state: say so instead of waiting out the timeout
        dead = s!.status === 'progressing' && !(await runnerAlive(state, s!));
        const settled = s!.status !== 'progressing' || dead;
        if (!settled) onLook?.(statusReport(s!, false, false));
        return settled;
      },
      { timeoutMs: watchMs, intervalMs },
      ctx.clock,
      ctx.signal,
    ));
  }
  const last = statusReport(s, dead, timedOut, await fleetSince(state, s));
  if (watchMs !== undefined) onLook?.(last);
  return last;
}

/** The current release when it is not the one the settled canary left running (see fleet_since). */
async function fleetSince(state: StateDir, s: CanaryState): Promise<CanaryStatusReport['fleet_since']> {
  if (s.status === 'progressing' || s.status === 'frozen') return null;
  const left = s.status === 'completed' ? s.plan.candidate.id : s.plan.stable.id;
  // A `current` that no longer parses is status's and rollback's to name; here it changes nothing.
  const { release } = await currentReleaseOrBroken(state);
  return release && release.id !== left ? { release_id: release.id, ref: release.ref } : null;
}

function statusReport(
  st: CanaryState,
  dead: boolean,
  timedOut: boolean,
  since: CanaryStatusReport['fleet_since'] = null,
): CanaryStatusReport {
  const exit = dead
    ? CANARY_EXIT.runner_died
    : timedOut
      ? CANARY_EXIT.timed_out
      : st.status === 'progressing'
        ? CANARY_EXIT.progressing_now
        : CANARY_EXIT[st.status];
  const hint = dead
    ? `its runner (pid ${st.pid}) died while ${describeStep(st.step)}: \`ifmesh canary resume\` goes on from there, \`ifmesh canary abort\` restores ${st.plan.stable.id}`
    : st.status === 'frozen'
      ? st.failed_gate?.gate === 'agents_registered'
        ? '`ifmesh canary abort` rolls it back; it cannot be promoted, its agents never registered on the candidate'
        : '`ifmesh canary promote` goes on, `ifmesh canary abort` rolls it back'
      : null;
  return {
    ...publicState(st),
    status: dead ? 'runner_died' : st.status,
    timed_out: timedOut,
    exit_code: exit,
    hint,
    fleet_since: since,
  };
}
