// The incident report, as JSON and Markdown in <state>/reports/: the witness's timeline (every event
// carrying the incident id), impact, the tree walked, actions taken, who was paged and who is next,
// and notifications sent.
import { mkdirSync, writeFileSync } from 'node:fs';
import type { StateDir } from '../../state/state-dir.js';
import { runWitnessQuery } from '../witness/query.js';
import type { IncidentLog } from './events.js';
import { type Investigation, summarizeInvestigation } from './p1.js';
import { type IncidentRecord, nextSteps, writeIncident } from './store.js';

/** Writes the record and its report; the witness's events are flushed first so the timeline has them. */
export async function saveIncident(rec: IncidentRecord, state: StateDir, log: IncidentLog): Promise<void> {
  rec.findings.witness = await log.close();
  writeIncident(state, rec);
  await writeReport(rec, state);
}

/** Who is paged next and when, or why nobody is: for `show`, the report and `list`. */
export function nextPageText(rec: IncidentRecord): string {
  const e = rec.escalation;
  if (rec.status !== 'open') return 'nobody: the incident is resolved';
  if (!e)
    return 'nobody automatically (a record from before the on-call roster): `ifmesh incident escalate ID`';
  if (e.next) return `${e.next.name} via ${e.next.via.join(', ')} at ${e.next.due_at} (${e.next.reason})`;
  if (e.stopped) return `nobody automatically: ${e.stopped}`;
  return 'nobody automatically: every level that applies was reached or acknowledged';
}

export interface IncidentReport {
  incident: IncidentRecord;
  timeline: { timestamp: string; event: string; detail: Record<string, unknown> }[];
  timeline_source: string;
}

async function timeline(rec: IncidentRecord): Promise<Pick<IncidentReport, 'timeline' | 'timeline_source'>> {
  if (!rec.witness_url) return { timeline: [], timeline_source: 'no witness configured' };
  try {
    const a = await runWitnessQuery({
      url: rec.witness_url,
      timeoutMs: 3_000,
      token: process.env.WITNESS_QUERY_TOKEN || undefined,
      body: { query: { incident_id: rec.id }, limit: 10_000 },
    });
    return {
      timeline_source: `${rec.witness_url} (events with incident_id ${rec.id})`,
      timeline: a.results.map((e) => {
        const { timestamp, event, incident_id: _i, idempotency_key: _k, id: _id, ...detail } = e;
        return { timestamp: String(timestamp), event: String(event), detail };
      }),
    };
  } catch (err) {
    return { timeline: [], timeline_source: `the witness did not answer: ${(err as Error).message}` };
  }
}

export function reportPaths(state: StateDir, id: string) {
  return { json: state.reportFile(`${id}.json`), markdown: state.reportFile(`${id}.md`) };
}

export async function writeReport(
  rec: IncidentRecord,
  state: StateDir,
): Promise<{ json: string; markdown: string }> {
  const report: IncidentReport = { incident: rec, ...(await timeline(rec)) };
  const files = reportPaths(state, rec.id);
  mkdirSync(state.reports, { recursive: true });
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.markdown, markdown(report));
  return files;
}

const cell = (v: unknown) =>
  String(v ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ');

export function markdown(r: IncidentReport): string {
  const i = r.incident;
  const c = i.classification;
  const out = [
    `# ${i.id}: ${i.title}`,
    '',
    `- Kind: ${i.kind}`,
    `- Severity: ${i.severity}${c ? ` (impact classifies as ${c.level}: ${c.description}; response ${c.response_time}; escalation ${c.escalation})` : ''}`,
    `- Status: ${i.status}`,
    `- Started: ${i.started_at}`,
    ...(i.resolved_at ? [`- Resolved: ${i.resolved_at}`] : []),
    `- Trace id: ${i.trace_id}`,
    `- Escalation level: ${i.escalation_level} (highest level reached)`,
    ...(i.auto_recovery
      ? [
          `- Auto-recovery: ${i.auto_recovery.restored ? 'service restored' : 'did not restore service'} (${i.auto_recovery.detail})`,
        ]
      : []),
    '',
    '## Impact',
    '',
  ];
  if (i.impact) {
    out.push(
      `- Connected agents: ${i.impact.agents_connected}`,
      `- Connections: ${i.impact.connections}`,
      `- Failed connections (last 5 min): ${i.impact.failed_connections_5m ?? 'unknown (witness did not answer)'}`,
      `- Agents affected: ${i.impact.agents_affected}`,
      `- Signaling instances: ${i.impact.instances.map((x) => `${x.url} ${x.up ? 'up' : 'DOWN'}`).join(', ') || 'none'}`,
    );
  } else out.push('not assessed');
  out.push('', '## Decision tree', '');
  if (i.tree) {
    out.push(`Tree: ${i.tree.tree}`, '');
    for (const s of i.tree.path)
      out.push(`- ${s.question} → **${s.answer}** (${cell(JSON.stringify(s.evidence))})`);
    out.push(
      '',
      `Root cause: ${i.tree.root_cause ? `${i.tree.root_cause.title} (\`${i.tree.root_cause.id}\`)` : 'none'}`,
    );
    for (const a of i.tree.actions) out.push(`- ${a}`);
  } else out.push('none walked');
  const inv = i.findings.investigation as Investigation | undefined;
  if (inv) {
    out.push('', '## Investigation', '');
    for (const l of summarizeInvestigation(inv)) out.push(`- ${l}`);
  }
  out.push('', '## Actions taken', '', '| time | action | ok | detail |', '| --- | --- | --- | --- |');
  for (const a of i.actions)
    out.push(`| ${a.at} | ${a.action} | ${a.ok ? 'yes' : 'NO'} | ${cell(a.detail)} |`);
  out.push('', '## Escalation', '');
  const e = i.escalation;
  if (e) {
    out.push(
      '| level | who | via | paged when | respond | status | paged | acknowledged | acknowledge by | error |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const s of e.levels) {
      const l = e.roster.find((r) => r.level === s.level);
      out.push(
        `| ${s.level} | ${cell(s.name)} | ${cell(s.via.join(', '))} | ${cell(l?.when_text ?? '')} | ${l ? `${l.respond_minutes} min` : ''} | ${s.status === 'failed' ? '**NOT REACHED**' : s.status} | ${s.paged_at ?? ''} | ${s.acked_at ?? ''} | ${s.status === 'paged' ? (s.ack_due_at ?? '') : ''} | ${cell(s.error ?? '')} |`,
      );
    }
    out.push('');
  }
  out.push(`Paged next: ${nextPageText(i)}`);
  out.push('', '## Notifications', '');
  const failed = i.notifications.filter((n) => !n.ok);
  if (failed.length)
    out.push(
      `**${failed.length} notice(s) FAILED** (a level whose every notice failed was not reached):`,
      '',
      ...failed.map((n) => `- ${n.at} ${n.channel} ${n.action} to ${n.to ?? `level ${n.level}`}: ${n.error}`),
      '',
    );
  if (i.notifications.length === 0) out.push('none sent');
  else {
    out.push(
      '| time | channel | action | level | to | sent | attempts | error |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const n of i.notifications)
      out.push(
        `| ${n.at} | ${n.channel} | ${n.action} | ${n.level || 'team'} | ${cell(n.to ?? '')} | ${n.ok ? 'yes' : '**NO**'} | ${n.attempts} | ${cell(n.error)} |`,
      );
  }
  out.push('', '## Timeline (IF.witness)', '', `Source: ${r.timeline_source}`, '');
  if (r.timeline.length) {
    out.push('| time | event | detail |', '| --- | --- | --- |');
    for (const e of r.timeline)
      out.push(`| ${e.timestamp} | ${e.event} | ${cell(JSON.stringify(e.detail))} |`);
  } else out.push('no events');
  const next = nextSteps(i);
  if (next.length) {
    out.push('', '## Next steps', '');
    for (const s of next) out.push(`- \`${s}\``);
  }
  return `${out.join('\n')}\n`;
}
