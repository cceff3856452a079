// A canary is a state machine persisted in the state directory (Argo Rollouts reconciles a rollout
// from its status the same way): the runner rewrites canary.json whole (tmp + fsync + rename, 0600)
// after every action, recording the step it is on before acting and what it did after, so a runner
// killed at any point leaves a state that `canary resume` continues from and `canary abort` undoes.
// `canary status`, `promote` and `abort` work from any terminal: an operator's promote or abort for
// a live runner is a separate request file the runner consumes, so neither writer overwrites the
// other.
import { promises as fs } from 'node:fs';
import { ExitCode, type ExitCodeValue } from '../../errors.js';
import { isAlive } from '../../exec/pid.js';
import { readStateJson, writeStateJson } from '../../state/json-file.js';
import { lockHolder } from '../../state/lock.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Release } from '../deploy/releases.js';
import type { Thresholds } from '../monitoring/thresholds.js';
import type { AnalysisProgress, AnalysisRules, Measurement } from './measurement.js';
import type { PromotionCheck } from './promotion.js';

export type CanaryStatus = 'progressing' | 'frozen' | 'completed' | 'failed' | 'aborted';

/** `canary status` exit codes (ExitCode, README): one per outcome, so scripts can branch on them. */
export const CANARY_EXIT: Record<
  CanaryStatus | 'timed_out' | 'progressing_now' | 'runner_died',
  ExitCodeValue
> = {
  completed: ExitCode.ok,
  failed: ExitCode.checkFailed,
  aborted: ExitCode.canaryAborted,
  frozen: ExitCode.canaryFrozen,
  timed_out: ExitCode.canaryTimedOut,
  /** Progressing in the state, but the process running it is gone: `canary resume` or `abort`. */
  runner_died: ExitCode.canaryRunnerDied,
  /** Without --watch, a canary still running is not an error. */
  progressing_now: ExitCode.ok,
  progressing: ExitCode.canaryTimedOut,
};

export interface CanaryPhase {
  step: string;
  /** Every agent on the candidate once this phase has begun. */
  agents: string[];
  /** The agents this phase moves. */
  new_agents: string[];
  /** Whether analysis follows it (every phase but the last). */
  analysis: boolean;
}

export interface CanaryPlan {
  canary_id: string;
  deployment_id: string;
  /** The stage (--stage) it runs in; null: the unnamed environment. */
  stage: string | null;
  /** In a gated stage (production): the release of the stage before that it is the same as. */
  promotion: PromotionCheck | null;
  stable: { id: string; ref: string; config_hash: string };
  candidate: {
    id: string;
    ref: string;
    config_hash: string;
    changes: Record<string, string>;
    agents_dir: string | null;
    /**
     * True when it runs what the stable release runs (the same code, agent configs and environment):
     * a rehearsal of the procedure, not a change. Absent otherwise, and in older plans.
     */
    unchanged?: true;
    /**
     * The code the candidate runs: the installed `--release` (or, in a dry run, what would be
     * installed); the stable release's when no --release is given.
     */
    code: {
      version: string | null;
      integrity: string | null;
      source: string;
      /** Installed release id; null when the candidate runs the running ifmesh's own code. */
      id: string | null;
      /** Dry run: what `--release` would install. */
      action?: string;
    };
  };
  phases: CanaryPhase[];
  /** How long a moved agent may take to register (--register-timeout); older plans: 20 s. */
  register_timeout_ms?: number;
  analysis: AnalysisRules & {
    checks: number;
    interval_ms: number;
    freeze_on_failure: boolean;
    thresholds: Thresholds;
  };
}

/**
 * The step the runner is on, written before it acts: a resumed runner redoes the step, and every
 * step is safe to redo (moving an agent already moved restarts it on the same spec).
 */
export type CanaryStep =
  /** Phase `phase` begins: the analysis baseline is taken, then its agents move. */
  | { kind: 'phase'; phase: number }
  /** Moving the phase's new agents to the candidate, then waiting for them to register. */
  | { kind: 'move'; phase: number }
  | { kind: 'analyse'; phase: number }
  /** Every agent to the candidate, then the candidate recorded as the current release. */
  | { kind: 'promote'; how: string }
  /** The canary agents back to the stable release, then the outcome recorded. */
  | {
      kind: 'rollback';
      status: 'failed' | 'aborted';
      reason: string;
      /** Every agent this rollback moves (fixed when it begins, for the registration check). */
      agents: string[];
    }
  | { kind: 'done' };

export interface CanaryState {
  plan: CanaryPlan;
  trace_id: string;
  /** The process running it; a frozen or finished canary has none running. */
  pid: number;
  /** The token of the deploy lock the runner holds: with `pid`, what tells a live runner. */
  lock_token: string | null;
  status: CanaryStatus;
  step: CanaryStep;
  /** Index into plan.phases of the phase reached. */
  phase: number;
  /** Agents running the candidate now. */
  on_candidate: string[];
  /** The agent being moved (either way) right now: a runner killed mid-move left it uncertain. */
  in_flight: string | null;
  /** The current phase's analysis: its baseline and where it stands. */
  analysis: (AnalysisProgress & { since: string; log_offsets: Record<string, number> }) | null;
  /**
   * Each agent's restart count right after the canary moved it (older states: from when its
   * analysis began): a restart since, by the supervisor or systemd, fails agents_healthy.
   */
  restarts_at_move?: Record<string, number>;
  failed_gate: Measurement | null;
  message: string;
  started_at: string;
  updated_at: string;
  /** The full candidate release (its agent specs; secrets only as names in the secrets file). */
  candidate_release: Release;
  stable_release: Release;
  /** Release records (and their installed code) kept when the outcome is recorded (default 10). */
  keep_releases?: number;
}

const isState = (v: unknown) => {
  const s = v as Partial<CanaryState> | null;
  return typeof s?.plan?.canary_id === 'string' && typeof s.status === 'string';
};

export async function readCanary(state: StateDir): Promise<CanaryState | undefined> {
  const s = readStateJson<CanaryState>(
    state.canary,
    isState,
    'check its agents with `ifmesh status`, restore the release with `ifmesh rollback`, then delete the file',
  );
  // A state written before canaries were resumable has no step: a live one was analysing.
  return (
    s && {
      ...s,
      lock_token: s.lock_token ?? null,
      in_flight: s.in_flight ?? null,
      analysis: s.analysis ?? null,
      step: s.step ?? legacyStep(s),
    }
  );
}

const legacyStep = (s: CanaryState): CanaryStep =>
  s.status === 'progressing' || s.status === 'frozen'
    ? { kind: 'analyse', phase: s.phase }
    : { kind: 'done' };

/** Written whole and 0600; the releases in it are sealed (their secrets are names, see releases.ts). */
export async function writeCanary(state: StateDir, s: CanaryState): Promise<void> {
  writeStateJson(state.canary, s, 0o600);
}

/** Whether the process the state names as its runner still runs it (alive, and holding the lock). */
export async function runnerAlive(state: StateDir, s: CanaryState): Promise<boolean> {
  if (!s.pid || !isAlive(s.pid)) return false;
  // A pid reused by an unrelated process does not hold the runner's deploy lock.
  return s.lock_token === null || (await lockHolder(state, 'deploy'))?.token === s.lock_token;
}

export type CanaryRequest = 'promote' | 'abort';

export async function requestCanary(state: StateDir, canaryId: string, action: CanaryRequest): Promise<void> {
  writeStateJson(state.canaryRequest, { canary_id: canaryId, action }, 0o600);
}

/** The operator's pending request for canary `canaryId`, consumed (removed) as it is read. */
export async function takeRequest(state: StateDir, canaryId: string): Promise<CanaryRequest | undefined> {
  const file = state.canaryRequest;
  let req: { canary_id?: string; action?: CanaryRequest };
  try {
    req = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  await fs.rm(file, { force: true });
  return req.canary_id === canaryId && (req.action === 'promote' || req.action === 'abort')
    ? req.action
    : undefined;
}

/** What `status` shows: the state without the releases' specs. */
export type PublicCanaryState = Omit<CanaryState, 'candidate_release' | 'stable_release'>;

export function publicState(s: CanaryState): PublicCanaryState {
  const { candidate_release: _c, stable_release: _s, ...rest } = s;
  return rest;
}
