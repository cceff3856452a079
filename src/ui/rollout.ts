// Human renderings of canary, monitor and rollback results (the data is what --json prints).
import type { ChalkInstance } from 'chalk';
import type { CanaryStatusReport } from '../ops/rollout/canary.js';
import type { CanaryPlan, PublicCanaryState } from '../ops/rollout/canary-state.js';
import type { Measurement, MeasurementStatus } from '../ops/rollout/measurement.js';
import type { MonitorCheck, MonitorReport } from '../ops/rollout/monitor.js';
import { formatDuration } from './units.js';

export function renderCanary(
  r: { plan: CanaryPlan; applied: boolean; state: PublicCanaryState | null },
  c: ChalkInstance,
): string {
  const p = r.plan;
  const a = p.analysis;
  const head = !r.state
    ? `${c.bold('plan')} for ${p.canary_id} (dry run: nothing changed)`
    : r.state.status === 'completed'
      ? `${c.green('✓ promoted')} ${p.canary_id}: ${r.state.message}`
      : `${c.red(`✗ ${r.state.status}`)} ${p.canary_id}: ${r.state.message}`;
  const changes = Object.entries(p.candidate.changes).map(([k, v]) => `${k}=${v}`);
  return [
    head,
    `  stable     ${p.stable.id} (${p.stable.ref}, config ${p.stable.config_hash})`,
    `  candidate  ${p.candidate.ref}, config ${p.candidate.config_hash}${changes.length ? `; ${changes.join(' ')}` : ''}${p.candidate.agents_dir ? `; agents from ${p.candidate.agents_dir}` : ''}`,
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

export function renderCanaryStatus(s: CanaryStatusReport, c: ChalkInstance): string {
  const state =
    s.status === 'runner_died'
      ? c.red('runner died')
      : s.timed_out
        ? c.yellow('timed out while progressing')
        : s.status;
  const a = s.analysis;
  return [
    `${c.bold(s.plan.canary_id)} ${state}${s.plan.stage ? ` (${s.plan.stage})` : ''}: ${s.message}`,
    `  phase ${s.phase + 1}/${s.plan.phases.length}, on the candidate: ${s.on_candidate.join(', ') || 'none'}${s.in_flight ? `; ${s.in_flight} was being moved` : ''}`,
    a
      ? `  analysis: ${a.checks}/${s.plan.analysis.checks} checks, ${a.failures}/${s.plan.analysis.failure_limit} failed checks allowed`
      : '',
    ...(a?.last_check?.gates.map((g) => `    ${renderMeasurement(g, c)}`) ?? []),
    s.failed_gate ? `  failed gate ${renderMeasurement(s.failed_gate, c)}` : '',
    s.hint ? `  ${s.hint}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

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
