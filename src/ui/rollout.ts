// Human renderings of canary and rollback results (the data is what --json prints).
import type { ChalkInstance } from 'chalk';
import type { CanaryPlan, PublicCanaryState } from '../ops/rollout/canary-state.js';

export function renderCanary(
  r: { plan: CanaryPlan; applied: boolean; state: PublicCanaryState | null },
  c: ChalkInstance,
): string {
  const p = r.plan;
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
    ...p.phases.map(
      (ph, i) =>
        `  phase ${i + 1}    ${ph.step}: ${ph.new_agents.join(', ')}${ph.analysis ? `, then ${p.analysis.checks} checks every ${p.analysis.interval_ms} ms (failure limit ${p.analysis.failure_limit})` : ''}`,
    ),
  ].join('\n');
}
