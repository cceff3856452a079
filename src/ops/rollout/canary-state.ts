// A canary's state lives in the state directory, so `canary status`, `promote` and `abort` work from
// any terminal: the runner rewrites canary.json whole after every step; an operator's promote or abort
// is a separate request file the runner consumes, so neither writer overwrites the other.
import { promises as fs } from 'node:fs';
import { statePaths } from '../../state/state-dir.js';
import type { Release } from '../deploy/releases.js';
import type { CheckRecord, GateResult, GateThresholds } from './analysis.js';

export type CanaryStatus = 'progressing' | 'frozen' | 'completed' | 'failed' | 'aborted';

/** `canary status` exit codes (README): one per outcome, so scripts can branch on them. */
export const CANARY_EXIT: Record<CanaryStatus | 'timed_out' | 'progressing_now', number> = {
  completed: 0,
  failed: 1,
  aborted: 5,
  frozen: 6,
  timed_out: 7,
  /** Without --watch, a canary still running is not an error. */
  progressing_now: 0,
  progressing: 7,
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
  stage: 'staging' | 'production';
  stable: { id: string; ref: string; config_hash: string };
  candidate: {
    id: string;
    ref: string;
    config_hash: string;
    changes: Record<string, string>;
    agents_dir: string | null;
  };
  phases: CanaryPhase[];
  analysis: {
    checks: number;
    interval_ms: number;
    failure_limit: number;
    freeze_on_failure: boolean;
    thresholds: GateThresholds;
  };
}

export interface CanaryState {
  plan: CanaryPlan;
  trace_id: string;
  /** The process running it; a frozen or finished canary has none running. */
  pid: number;
  status: CanaryStatus;
  /** Index into plan.phases of the phase reached. */
  phase: number;
  /** Agents running the candidate now. */
  on_candidate: string[];
  failures: number;
  last_check: CheckRecord | null;
  failed_gate: GateResult | null;
  message: string;
  started_at: string;
  updated_at: string;
  /** The full candidate release (with agent specs and secrets): never printed. */
  candidate_release: Release;
  stable_release: Release;
}

export async function readCanary(stateDir: string): Promise<CanaryState | undefined> {
  try {
    return JSON.parse(await fs.readFile(statePaths(stateDir).canary, 'utf8')) as CanaryState;
  } catch {
    return undefined;
  }
}

export async function writeCanary(stateDir: string, s: CanaryState): Promise<void> {
  const file = statePaths(stateDir).canary;
  const tmp = `${file}.${process.pid}.tmp`;
  // 0600: the candidate's --set values may hold a TURN password.
  await fs.writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
  await fs.rename(tmp, file);
}

export type CanaryRequest = 'promote' | 'abort';

export async function requestCanary(
  stateDir: string,
  canaryId: string,
  action: CanaryRequest,
): Promise<void> {
  const file = statePaths(stateDir).canaryRequest;
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify({ canary_id: canaryId, action }));
  await fs.rename(tmp, file);
}

/** The operator's pending request for canary `canaryId`, consumed (removed) as it is read. */
export async function takeRequest(stateDir: string, canaryId: string): Promise<CanaryRequest | undefined> {
  const file = statePaths(stateDir).canaryRequest;
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

/** What `status` shows: the state without the releases' specs (their env may hold secrets). */
export type PublicCanaryState = Omit<CanaryState, 'candidate_release' | 'stable_release'>;

export function publicState(s: CanaryState): PublicCanaryState {
  const { candidate_release: _c, stable_release: _s, ...rest } = s;
  return rest;
}
