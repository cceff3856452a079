// Analysis as measurements (Argo Rollouts' AnalysisRun, analysis/analysis.go): every check measures
// each gate, and a measurement is `ok`, `failed`, `inconclusive` (no data yet) or `error` (its source
// could not be reached). The rules that turn measurements into a verdict are pure and shared by
// `canary` and `monitor`, so both read a blind gate the same way:
//   - a check with a failed gate is a failure; more than `failure_limit` failures fail the analysis
//     (0, the default: the runbook's first-failure rollback);
//   - a gate erroring `consecutive_error_limit` checks in a row fails the analysis (Argo's
//     consecutiveErrorLimit): an unreachable source is never taken for a healthy one;
//   - a window in which a required gate never measured (ok or failed) ends `inconclusive`, never
//     passed: nothing promotes on a signal nobody saw.
import type { Clock } from '../../util/clock.js';

export type MeasurementStatus = 'ok' | 'failed' | 'inconclusive' | 'error';

export interface Measurement {
  gate: string;
  status: MeasurementStatus;
  value: number | string | null;
  threshold: string;
  /** Why it is inconclusive or an error (what had no data, which source did not answer). */
  detail?: string;
}

export interface CheckRecord {
  at: string;
  /** The worst of its gates: failed, then error, then inconclusive, else ok. */
  status: MeasurementStatus;
  gates: Measurement[];
}

export interface AnalysisRules {
  /** Failed checks tolerated; one more fails the analysis. */
  failure_limit: number;
  /** Checks in a row a gate may error; reaching it fails the analysis. */
  consecutive_error_limit: number;
  /** Gates that must measure (ok or failed) at least once in a window for it to pass. */
  required: string[];
}

/** Where an analysis stands: persisted after every check, so a resumed canary goes on from here. */
export interface AnalysisProgress {
  checks: number;
  failures: number;
  consecutive_errors: Record<string, number>;
  /** Gates that measured (ok or failed) at least once in this window. */
  measured: string[];
  last_check: CheckRecord | null;
}

export type Verdict =
  | { result: 'passed' }
  | { result: 'failed' | 'inconclusive'; gate: Measurement; reason: string };

export const freshProgress = (): AnalysisProgress => ({
  checks: 0,
  failures: 0,
  consecutive_errors: {},
  measured: [],
  last_check: null,
});

const WORST: MeasurementStatus[] = ['failed', 'error', 'inconclusive', 'ok'];

export function checkRecord(at: string, gates: Measurement[]): CheckRecord {
  const status = WORST.find((s) => gates.some((g) => g.status === s)) ?? 'ok';
  return { at, status, gates };
}

export const describeGate = (g: Measurement) =>
  `${g.gate} = ${g.value ?? g.status} (${g.threshold})${g.detail ? `: ${g.detail}` : ''}`;

/** Pure: the progress after one check, and the verdict when this check decides the analysis. */
export function recordCheck(
  p: AnalysisProgress,
  c: CheckRecord,
  rules: AnalysisRules,
): { progress: AnalysisProgress; verdict: Verdict | null } {
  const failed = c.gates.filter((g) => g.status === 'failed');
  const consecutive_errors = Object.fromEntries(
    c.gates.map((g) => [g.gate, g.status === 'error' ? (p.consecutive_errors[g.gate] ?? 0) + 1 : 0]),
  );
  const progress: AnalysisProgress = {
    checks: p.checks + 1,
    failures: p.failures + (failed.length ? 1 : 0),
    consecutive_errors,
    measured: [
      ...new Set([
        ...p.measured,
        ...c.gates.filter((g) => g.status === 'ok' || g.status === 'failed').map((g) => g.gate),
      ]),
    ],
    last_check: c,
  };
  if (progress.failures > rules.failure_limit)
    return { progress, verdict: { result: 'failed', gate: failed[0]!, reason: describeGate(failed[0]!) } };
  const blind = c.gates.find((g) => consecutive_errors[g.gate]! >= rules.consecutive_error_limit);
  if (blind)
    return {
      progress,
      verdict: {
        result: 'failed',
        gate: blind,
        reason: `${blind.gate} could not be measured ${consecutive_errors[blind.gate]} checks in a row (consecutive error limit ${rules.consecutive_error_limit}): ${blind.detail ?? 'error'}`,
      },
    };
  return { progress, verdict: null };
}

/** Pure: the verdict of a window that ran its course: passed only if every required gate measured. */
export function windowVerdict(p: AnalysisProgress, rules: AnalysisRules): Verdict {
  const blind = rules.required.filter((g) => !p.measured.includes(g));
  if (!blind.length) return { result: 'passed' };
  const gate: Measurement = p.last_check?.gates.find((g) => g.gate === blind[0]) ?? {
    gate: blind[0]!,
    status: 'inconclusive',
    value: null,
    threshold: 'measured at least once',
    detail: 'no check ran',
  };
  return {
    result: 'inconclusive',
    gate,
    reason: `${blind.join(', ')} never measured in the window (${p.checks} checks; last: ${gate.status}${gate.detail ? `, ${gate.detail}` : ''})`,
  };
}

export type AnalysisOutcome = Verdict | { result: 'promote' | 'abort' };

/**
 * The canary's window: checks `intervalMs` apart until `checks` have run (counting those `progress`
 * already holds, so a resumed canary finishes its window rather than starting another). Between
 * checks it looks for an operator's promote or abort every `pollMs`.
 */
export async function runAnalysis(o: {
  checks: number;
  intervalMs: number;
  rules: AnalysisRules;
  progress: AnalysisProgress;
  evaluate: () => Promise<Measurement[]>;
  request: () => Promise<'promote' | 'abort' | undefined>;
  onCheck: (p: AnalysisProgress, c: CheckRecord) => void | Promise<void>;
  clock: Clock;
  signal?: AbortSignal | undefined;
  pollMs?: number;
}): Promise<AnalysisOutcome> {
  let p = o.progress;
  while (p.checks < o.checks) {
    const until = o.clock.now() + o.intervalMs;
    for (;;) {
      const req = await o.request();
      if (req) return { result: req };
      const left = until - o.clock.now();
      if (left <= 0) break;
      await o.clock.sleep(Math.min(left, o.pollMs ?? 250), o.signal);
    }
    const c = checkRecord(new Date(o.clock.now()).toISOString(), await o.evaluate());
    const step = recordCheck(p, c, o.rules);
    p = step.progress;
    await o.onCheck(p, c);
    if (step.verdict) return step.verdict;
  }
  return windowVerdict(p, o.rules);
}
