import type { ChalkInstance } from 'chalk';
import type { IncidentPlan } from '../ops/incident/declare.js';
import type { DueRun, PageOutcome } from '../ops/incident/escalation.js';
import type { NotificationResult } from '../ops/incident/notify/types.js';
import { type Investigation, summarizeInvestigation } from '../ops/incident/p1.js';
import { nextPageText, reportPaths } from '../ops/incident/report.js';
import { type IncidentRecord, nextSteps, type UnreadableIncident } from '../ops/incident/store.js';
import { openStateDir, type StateDir } from '../state/state-dir.js';

export function renderPlan(p: IncidentPlan, c: ChalkInstance): string {
  return [
    `${c.bold('plan')} for a ${p.severity} ${p.kind} incident (dry run: nothing changed); ${p.paging.why}`,
    ...p.steps.map((s, i) => `  ${i + 1}. ${s}`),
  ].join('\n');
}

const inMinutes = (iso: string, now: number) => {
  const m = Math.round((Date.parse(iso) - now) / 60_000);
  return m > 0 ? ` (in ${m} min)` : m < 0 ? ` (${-m} min ago)` : ' (now)';
};

function escalationLines(r: IncidentRecord, c: ChalkInstance, now: number | undefined): string[] {
  const e = r.escalation;
  if (!e) return [`  escalation: ${nextPageText(r)}`];
  const lines = ['  on-call:'];
  for (const s of e.levels) {
    const l = e.roster.find((x) => x.level === s.level);
    const state =
      s.status === 'paged'
        ? `${c.green('paged')} ${s.paged_at}; acknowledge by ${s.ack_due_at}`
        : s.status === 'acknowledged'
          ? `${c.green('acknowledged')} ${s.acked_at}`
          : s.status === 'failed'
            ? `${c.red('NOT REACHED')} ${s.failed_at}: ${s.error}`
            : `waiting (${l?.when_text ?? ''})`;
    lines.push(`    ${s.name} via ${s.via.join(', ')}, respond ${l?.respond_minutes ?? '?'} min: ${state}`);
  }
  const next = e.next && r.status === 'open';
  lines.push(
    `  paged next: ${nextPageText(r)}${next && now !== undefined ? inMinutes(e.next!.due_at, now) : ''}`,
  );
  if (next)
    lines.push(
      c.dim(
        '    (on schedule: run by any `ifmesh incident` command and by `ifmesh incident due` from cron; `ifmesh incident ack ID` stops it)',
      ),
    );
  return lines;
}

function headLines(r: IncidentRecord, c: ChalkInstance): string[] {
  const head = r.status === 'open' ? c.red(`${r.severity} INCIDENT`) : c.green(`${r.severity} RESOLVED`);
  return [
    `${head} ${c.bold(r.id)}: ${r.title}`,
    `  started ${r.started_at}${r.resolved_at ? `, resolved ${r.resolved_at}` : ''}; escalation level ${r.escalation_level}; trace ${r.trace_id}`,
  ];
}

/** Its steps taken and the notices sent, a line each. */
const stepLines = (r: IncidentRecord, c: ChalkInstance) => [
  ...r.actions.map((a) => `  ${a.ok ? c.green('✓') : c.red('✗')} ${a.action}: ${a.detail}`),
  ...r.notifications.map((n) => `  ${noticeLine(n, c)}`),
];

/** `incident show --watch` on a terminal: its state, steps and notices, and who is paged next, when. */
export function renderIncidentLive(r: IncidentRecord, c: ChalkInstance, now: number): string {
  return [...headLines(r, c), ...stepLines(r, c), ...escalationLines(r, c, now)].join('\n');
}

/** `incident show --watch` in a pipe: a line per change. */
export function incidentLine(r: IncidentRecord): string {
  const acked =
    r.escalation?.levels.filter((l) => l.status === 'acknowledged').map((l) => `L${l.level}`) ?? [];
  const failed = r.notifications.filter((n) => !n.ok).length;
  return [
    `${r.id} ${r.status} level ${r.escalation_level}${acked.length ? `, acknowledged ${acked.join(', ')}` : ''}`,
    `${r.actions.length} steps, ${r.notifications.length} notices${failed ? ` (${failed} failed)` : ''}`,
    `next: ${r.escalation?.next ? `${r.escalation.next.name} at ${r.escalation.next.due_at}` : 'nobody'}`,
  ].join('; ');
}

export function renderIncident(r: IncidentRecord, c: ChalkInstance, state?: StateDir, now?: number): string {
  const lines = headLines(r, c);
  if (r.classification)
    lines.push(
      `  impact classifies as ${r.classification.level} (${r.classification.description}); respond ${r.classification.response_time}; escalate to ${r.classification.escalation}`,
    );
  if (r.auto_recovery)
    lines.push(
      `  auto-recovery: ${r.auto_recovery.restored ? c.green('service restored') : c.yellow('did not restore service')} (${r.auto_recovery.detail})`,
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
  lines.push(...stepLines(r, c), ...escalationLines(r, c, now));
  const witness = r.findings.witness;
  if (r.witness_url && witness === 'spooled')
    lines.push(
      c.yellow(
        '  the witness did not take every event yet: they wait in the spool (ifmesh witness spool --flush)',
      ),
    );
  if (r.witness_url && witness === 'not_logged')
    lines.push(c.yellow('  no event was logged to the witness: IF_WITNESS_API_KEY is not set'));
  const next = nextSteps(r);
  if (next.length) {
    lines.push('  next:');
    for (const s of next) lines.push(`    ${s}`);
  }
  const files = reportPaths(state ?? openStateDir('.'), r.id);
  lines.push(c.dim(`  report: ${files.markdown} and ${files.json}`));
  return lines.join('\n');
}

export function noticeLine(n: NotificationResult, c: ChalkInstance): string {
  const to = n.to ? ` to ${n.to}` : '';
  return `${n.ok ? c.green('✓') : c.red('✗')} notified ${n.channel}${to} (${n.action}, level ${n.level || 'team'})${n.ok ? '' : `: ${n.error} after ${n.attempts} attempts`}`;
}

/** The stderr lines for notices that failed: loud, one per channel. */
export function failedNoticeLines(id: string, sent: NotificationResult[]): string[] {
  return sent
    .filter((n) => !n.ok)
    .map(
      (n) =>
        `error: ${id}: ${n.channel} ${n.action} to ${n.to ?? `level ${n.level}`} FAILED after ${n.attempts} attempt(s): ${n.error}`,
    );
}

/** What a run of due escalations did, for stderr: one line per page, failures as errors. */
export function dueLines(run: Pick<DueRun, 'pages'> & Partial<Pick<DueRun, 'unreadable'>>): {
  info: string[];
  errors: string[];
} {
  const info: string[] = [];
  const errors: string[] = [];
  for (const u of run.unreadable ?? [])
    errors.push(`error: ${u.error}: its pages cannot be sent until it reads again; ${u.fix}`);
  const line = (p: PageOutcome) => `${p.incident_id}: paged ${p.name} (${p.reason})`;
  for (const p of run.pages) {
    if (p.reached) info.push(`escalated ${line(p)}`);
    else
      errors.push(
        `error: ${line(p)}: NOT reached (${p.results.map((r) => `${r.channel}: ${r.error}`).join('; ')})`,
      );
    if (p.reached) errors.push(...failedNoticeLines(p.incident_id, p.results));
  }
  return { info, errors };
}

export function renderDue(run: DueRun, c: ChalkInstance, now?: number): string {
  const lines = [
    `${run.checked} open incident(s) checked; ${run.pages.length} page(s) sent`,
    ...run.unreadable.map((u) => c.red(`  ✗ ${u.file} no longer parses: not checked, nobody paged for it`)),
  ];
  for (const p of run.pages)
    lines.push(
      `  ${p.reached ? c.green('✓') : c.red('✗')} ${p.incident_id}: ${p.name} (${p.reason})${p.reached ? '' : ` — NOT reached: ${p.results.map((r) => r.error).join('; ')}`}`,
    );
  for (const n of run.next)
    lines.push(
      `  ${n.incident_id} paged next: ${n.next ? `${n.next.name} at ${n.next.due_at}${now !== undefined ? inMinutes(n.next.due_at, now) : ''} (${n.next.reason})` : `nobody automatically${n.stopped ? `: ${n.stopped}` : ''}`}`,
    );
  return lines.join('\n');
}

export function renderIncidentList(
  l: { incidents: IncidentRecord[]; unreadable?: UnreadableIncident[] },
  c: ChalkInstance,
): string {
  const torn = (l.unreadable ?? []).map((u) =>
    c.red(`✗ ${u.file} no longer parses: not listed below; ${u.fix}`),
  );
  if (l.incidents.length === 0)
    return [...torn, torn.length ? 'no other incidents' : 'no incidents'].join('\n');
  const rows = [...l.incidents].sort((a, b) =>
    a.status === b.status ? b.started_at.localeCompare(a.started_at) : a.status === 'open' ? -1 : 1,
  );
  return [
    ...torn,
    ...rows.map(
      (r) =>
        `${r.status === 'open' ? c.red('open    ') : c.green('resolved')} ${r.id}  ${r.severity}  ${r.kind.padEnd(12)} ${r.started_at}  level ${r.escalation_level}${r.status === 'open' && r.escalation?.next ? `  next: ${r.escalation.next.name} at ${r.escalation.next.due_at}` : ''}`,
    ),
  ].join('\n');
}
