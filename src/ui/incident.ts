import type { ChalkInstance } from 'chalk';
import type { IncidentPlan } from '../ops/incident/declare.js';
import { type Investigation, summarizeInvestigation } from '../ops/incident/p1.js';
import { reportPaths } from '../ops/incident/report.js';
import type { IncidentRecord } from '../ops/incident/store.js';

export function renderPlan(p: IncidentPlan, c: ChalkInstance): string {
  return [
    `${c.bold('plan')} for a ${p.severity} ${p.kind} incident (dry run: nothing changed)`,
    ...p.steps.map((s, i) => `  ${i + 1}. ${s}`),
  ].join('\n');
}

export function renderIncident(r: IncidentRecord, c: ChalkInstance, stateDir?: string): string {
  const head = r.status === 'open' ? c.red(`${r.severity} INCIDENT`) : c.green(`${r.severity} RESOLVED`);
  const lines = [
    `${head} ${c.bold(r.id)}: ${r.title}`,
    `  started ${r.started_at}${r.resolved_at ? `, resolved ${r.resolved_at}` : ''}; escalation level ${r.escalation_level}; trace ${r.trace_id}`,
  ];
  if (r.classification)
    lines.push(
      `  impact classifies as ${r.classification.level} (${r.classification.description}); respond ${r.classification.response_time}; escalate to ${r.classification.escalation}`,
    );
  if (r.tree) {
    lines.push(`  tree ${r.tree.tree}:`);
    for (const s of r.tree.path)
      lines.push(`    ${s.question} ${c.bold(s.answer)} ${c.dim(JSON.stringify(s.evidence))}`);
    if (r.tree.root_cause) lines.push(`    root cause: ${r.tree.root_cause.title}`);
  }
  const inv = r.findings.investigation as Investigation | undefined;
  if (inv) {
    lines.push('  investigation:');
    for (const l of summarizeInvestigation(inv)) lines.push(`    ${l}`);
  }
  for (const a of r.actions) lines.push(`  ${a.ok ? c.green('✓') : c.red('✗')} ${a.action}: ${a.detail}`);
  for (const n of r.notifications)
    lines.push(
      `  ${n.ok ? c.green('✓') : c.red('✗')} notified ${n.channel} (${n.action}, level ${n.level})${n.ok ? '' : `: ${n.error} after ${n.attempts} attempts`}`,
    );
  if (r.witness_url && r.findings.witness_flushed === false)
    lines.push(
      c.yellow(
        `  the witness did not take every event yet: they wait in the spool (ifmesh witness spool --flush)`,
      ),
    );
  if (r.next_steps.length) {
    lines.push('  next:');
    for (const s of r.next_steps) lines.push(`    ${s}`);
  }
  const files = reportPaths(stateDir ?? '.', r.id);
  lines.push(c.dim(`  report: ${files.markdown} and ${files.json}`));
  return lines.join('\n');
}

export function renderIncidentList(l: { incidents: IncidentRecord[] }, c: ChalkInstance): string {
  if (l.incidents.length === 0) return 'no incidents';
  const rows = [...l.incidents].sort((a, b) =>
    a.status === b.status ? b.started_at.localeCompare(a.started_at) : a.status === 'open' ? -1 : 1,
  );
  return rows
    .map(
      (r) =>
        `${r.status === 'open' ? c.red('open    ') : c.green('resolved')} ${r.id}  ${r.severity}  ${r.kind.padEnd(12)} ${r.started_at}  level ${r.escalation_level}`,
    )
    .join('\n');
}
