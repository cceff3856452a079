// Human renderings of canary, monitor and rollback results (the data is what --json prints).
import type { ChalkInstance } from 'chalk';
import type { CanaryStatusReport } from '../ops/rollout/canary.js';
import type { CanaryPlan, PublicCanaryState } from '../ops/rollout/canary-state.js';
import type { Measurement, MeasurementStatus } from '../ops/rollout/measurement.js';
import type { MonitorCheck, MonitorReport } from '../ops/rollout/monitor.js';
import { formatDuration } from './units.js';

export function renderCanary(
  r: {
    plan: CanaryPlan;
    applied: boolean;
    state: PublicCanaryState | null;
    blocked_by?: { holder: string; release_hint: string | null } | null;
  },
  c: ChalkInstance,
): string {
  const p = r.plan;
  const a = p.analysis;
  const head = !r.state
    ? `${c.bold('plan')} for ${p.canary_id} (dry run: nothing changed)`
    : r.state.status === 'completed'
      ? `${c.green('✓')} ${r.state.message}`
      : `${c.red(`✗ ${r.state.status}`)} ${p.canary_id}: ${r.state.message}`;
  const changes = Object.entries(p.candidate.changes).map(([k, v]) => `${k}=${v}`);
  return [
    head,
    `  stable     ${p.stable.id} (${p.stable.ref}, config ${p.stable.config_hash})`,
    `  candidate  ${p.candidate.ref}, config ${p.candidate.config_hash}${changes.length ? `; ${changes.join(' ')}` : ''}${p.candidate.agents_dir ? `; agents from ${p.candidate.agents_dir}` : ''}`,
    p.candidate.unchanged
      ? c.yellow(
          '  unchanged  the candidate runs what the stable release runs (a rehearsal): name a change with --release, --set or --agents-dir',
        )
      : '',
    // older canary states have no code
    p.candidate.code
      ? `  code       ${p.candidate.code.action ?? `${p.candidate.code.version ? `${p.candidate.code.version}, ` : ''}${p.candidate.code.source}${p.candidate.code.integrity ? ` (${p.candidate.code.integrity.slice(0, 23)}…)` : ''}`}`
      : '',
    ...p.phases.map(
      (ph, i) =>
        `  phase ${i + 1}    ${ph.step}: ${ph.new_agents.join(', ')}${ph.analysis ? `, then ${a.checks} checks every ${formatDuration(a.interval_ms)}` : ''}`,
    ),
    `  analysis   failure limit ${a.failure_limit}, consecutive error limit ${a.consecutive_error_limit}, required: ${a.required.join(', ')}`,
    p.stage ? `  stage      ${p.stage}${p.promotion ? `; ${renderPromotion(p.promotion, c)}` : ''}` : '',
    r.blocked_by ? blockedLine(r.blocked_by, 'canary', c) : '',
  ]
    .filter(Boolean)
    .join('\n');
}

function renderPromotion(p: NonNullable<CanaryPlan['promotion']>, c: ChalkInstance): string {
  return p.passed_as
    ? `passed ${p.requires} as ${p.passed_as}`
    : c.yellow(`did not pass ${p.requires}: promoted with --force`);
}

const MARK: Record<MeasurementStatus, (c: ChalkInstance) => string> = {
  ok: (c) => c.green('✓'),
  failed: (c) => c.red('✗'),
  inconclusive: (c) => c.yellow('?'),
  error: (c) => c.red('!'),
};

export function renderMeasurement(g: Measurement, c: ChalkInstance): string {
  return `${MARK[g.status](c)} ${g.gate} ${g.status}${g.value !== null ? ` ${g.value}` : ''} (${g.threshold})${g.detail ? c.dim(`: ${g.detail}`) : ''}`;
}

/** Which agents run which release now: the candidate's, the one being moved, the rest the stable one. */
function agentsByRelease(s: CanaryStatusReport) {
  const all = s.plan.phases.at(-1)?.agents ?? s.on_candidate;
  const stable = all.filter((a) => !s.on_candidate.includes(a) && a !== s.in_flight);
  return { candidate: s.on_candidate, stable };
}

function statusWord(s: CanaryStatusReport, c: ChalkInstance): string {
  if (s.status === 'runner_died') return c.red('runner died');
  if (s.timed_out) return c.yellow('timed out while progressing');
  const paint = {
    completed: c.green,
    failed: c.red,
    aborted: c.yellow,
    frozen: c.yellow,
    progressing: c.cyan,
  };
  return paint[s.status](s.status);
}

export function renderCanaryStatus(s: CanaryStatusReport, c: ChalkInstance): string {
  const a = s.analysis;
  const { candidate, stable } = agentsByRelease(s);
  const p = s.plan;
  return [
    `${c.bold(p.canary_id)} ${statusWord(s, c)}${p.stage ? ` (${p.stage})` : ''}: ${s.message}`,
    `  phase ${s.phase + 1}/${p.phases.length} (${p.phases.map((ph) => ph.step).join(' → ')})`,
    `  candidate  ${p.candidate.id} (${p.candidate.ref}): ${candidate.join(', ') || 'no agent'}`,
    `  stable     ${p.stable.id} (${p.stable.ref}): ${stable.join(', ') || 'no agent'}`,
    s.in_flight ? c.yellow(`  moving     ${s.in_flight}`) : '',
    a
      ? `  analysis: ${a.checks}/${p.analysis.checks} checks, ${failedChecks(a.failures, p.analysis.failure_limit)}`
      : '',
    ...(a?.last_check?.gates.map((g) => `    ${renderMeasurement(g, c)}`) ?? []),
    s.failed_gate ? `  failed gate ${renderMeasurement(s.failed_gate, c)}` : '',
    s.fleet_since ? c.yellow(`  since then ${fleetSinceText(s.fleet_since)}`) : '',
    s.hint ? `  ${s.hint}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

const fleetSinceText = (f: NonNullable<CanaryStatusReport['fleet_since']>) =>
  `the fleet runs ${f.ref} (${f.release_id}): a rollback or deploy came after this canary, whose agent lists are from when it ended`;

/** `canary status --watch` in a pipe: one line per change. */
export function canaryStatusLine(s: CanaryStatusReport, c: ChalkInstance): string {
  const a = s.analysis;
  const { candidate, stable } = agentsByRelease(s);
  const gates =
    a?.last_check?.gates.map((g) => `${MARK[g.status](c)} ${g.gate} ${g.value ?? g.status}`) ?? [];
  return [
    `${s.plan.canary_id} ${statusWord(s, c)} phase ${s.phase + 1}/${s.plan.phases.length}: ${s.message}`,
    `candidate ${candidate.join(',') || '-'}`,
    `stable ${stable.join(',') || '-'}`,
    ...(s.in_flight ? [`moving ${s.in_flight}`] : []),
    ...(a
      ? [`checks ${a.checks}/${s.plan.analysis.checks}${gates.length ? ` (${gates.join(', ')})` : ''}`]
      : []),
    ...(s.fleet_since ? [`since then ${fleetSinceText(s.fleet_since)}`] : []),
    ...(s.hint ? [s.hint] : []),
  ].join('; ');
}

/** A look at the canary changed when anything but the time of its last write did. */
export const canaryStatusKey = (s: CanaryStatusReport): string => JSON.stringify({ ...s, updated_at: null });

export function renderMonitorCheck(m: MonitorCheck, c: ChalkInstance): string {
  return `[${Math.round(m.elapsed_ms / 1000)}s] ${m.events ?? 'no'} events, ${m.status}: ${m.gates.map((g) => `${MARK[g.status](c)} ${g.gate}${g.value !== null ? ` ${g.value}` : ''}`).join(', ')}${m.failures ? ` (${m.failures} failed checks)` : ''}`;
}

export function renderMonitorReport(r: MonitorReport, c: ChalkInstance): string {
  if (r.result === 'passed')
    return `${c.green('✓')} ${r.deployment_id}: ${r.checks} checks, every required gate measured, nothing rolled back`;
  const what = r.result === 'inconclusive' ? c.yellow('? inconclusive') : c.red('✗ failed');
  const after =
    r.result === 'inconclusive'
      ? 'not rolled back (nothing measured it bad)'
      : r.rollback
        ? `rolled back to ${r.rollback.plan.to.id}`
        : 'not rolled back (--no-rollback)';
  return `${what} ${r.reason}: ${after}`;
}

/** A dry run's line for a deploy lock held now (blockedBy): the real run would refuse. */
export function blockedLine(
  b: { holder: string; release_hint: string | null },
  what: 'canary' | 'rollback',
  c: ChalkInstance,
): string {
  return c.yellow(
    `  blocked    the deploy lock is held by ${b.holder}: the ${what} would refuse now${b.release_hint ? ` (${b.release_hint})` : ''}`,
  );
}

/** "0 failed checks, none allowed" rather than "1/0 failed checks allowed". */
export function failedChecks(failures: number, limit: number): string {
  const allowed = limit === 0 ? 'none allowed' : `${limit} allowed`;
  return `${failures} failed check${failures === 1 ? '' : 's'} (${allowed})`;
}
