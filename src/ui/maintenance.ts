import type { ChalkInstance } from 'chalk';
import type { CronPlan } from '../ops/maintenance/cron.js';
import type { DailyReport } from '../ops/maintenance/daily.js';
import type { NoticeOutcome } from '../ops/maintenance/notify.js';
import type { WeeklyReport } from '../ops/maintenance/weekly.js';
import { formatBytes, formatMs, formatPercent, formatQuantity } from './units.js';

/** Whether the team was told, loudly when nobody was. */
export function noticeLine(n: NoticeOutcome, c: ChalkInstance): string {
  const told = n.channels.filter((x) => x.ok).map((x) => x.channel);
  const failed = n.channels
    .filter((x) => !x.ok)
    .map((x) => `${x.channel} failed after ${x.attempts} tries (${x.error})`);
  switch (n.status) {
    case 'sent':
      return `told the team (${n.severity}): ${told.join(' and ')}`;
    case 'failed':
      return told.length
        ? `told the team (${n.severity}): ${told.join(' and ')}; ${c.red('✗')} ${failed.join('; ')}`
        : `${c.red('✗ NOBODY WAS TOLD:')} ${failed.join('; ')}`;
    case 'not_configured':
      return `${c.red('✗ NOBODY WAS TOLD:')} ${n.hint}`;
    case 'suppressed':
      return 'the team was not told (--no-notify)';
    case 'dry_run':
      return 'the team was not told (dry run)';
    default:
      return '';
  }
}

function verdict(
  ok: boolean,
  needs: string[],
  what: string,
  notice: NoticeOutcome,
  c: ChalkInstance,
): string[] {
  return ok
    ? [`${c.green('✓')} ${what} complete`]
    : [
        `${c.red('✗')} ${what}: ${needs.length} thing(s) need a person`,
        ...needs.map((n) => `  - ${n}`),
        noticeLine(notice, c),
      ];
}

function certificateLine(r: DailyReport): string[] {
  const cert = r.certificate;
  const lines = [
    `1. certificate: ${cert ? `${cert.days_left} days left (${cert.status})` : 'none configured'}`,
  ];
  const n = r.renewal;
  if (n)
    lines.push(
      n.renewed
        ? `   renewed by ${n.plan.method}: expires ${n.new_expiry} (was ${n.plan.old_expiry})`
        : `   renewal: ${n.skipped ?? (n.ok ? 'nothing to do' : `FAILED (${n.problems.join('; ')})`)}`,
    );
  return lines;
}

function keyRotationLine(r: DailyReport): string[] {
  const k = r.key_rotation;
  if (!k) return [];
  if (!k.enabled) return ['   key rotation: periodic rotation off (ENABLE_SRTP_KEY_ROTATION=false)'];
  const last = k.last ? `last ${k.last.at} (${k.last.ok ? 'completed' : 'INCOMPLETE'})` : 'never rotated';
  // Never rotated, it is due at once: a date equal to now reads as a typo at 3 a.m.
  const due = k.overdue
    ? `due since ${k.next_due_at} — OVERDUE`
    : k.due
      ? 'due now'
      : `next due ${k.next_due_at}`;
  return [`   key rotation: ${last}, ${due}`];
}

export function renderDaily(r: DailyReport, c: ChalkInstance): string {
  return [
    `daily maintenance ${r.maintenance_id}${r.dry_run ? ' (dry run: nothing changed)' : ''}`,
    ...certificateLine(r),
    `2. logs: ${r.logs.length} files, ${formatBytes(r.logs_total_bytes)}`,
    ...r.logs.map((l) => `     ${l.file} ${formatBytes(l.bytes)}`),
    `3. logrotate: ${r.logrotate.ok ? 'ok' : 'FAILED'} (${r.logrotate.written ? r.logrotate.config : `dry run: logrotate -d checked the configuration a real run writes to ${r.logrotate.config}; no log was rotated`})`,
    `4. witness cleanup (retain ${r.cleanup.retain_days} days): ${r.cleanup.ok ? 'ok' : r.cleanup.error}`,
    `5. health report: ${r.dry_run ? '(not written) ' : ''}${r.report_file}`,
    `   agents ${r.health.total_agents ?? '-'}, connections ${r.health.active_connections ?? '-'}${r.health.connected_pairs === null ? '' : ` (${r.health.connected_pairs} pair(s))`}, errors 24h ${r.health.error_count_24h ?? '-'}`,
    ...keyRotationLine(r),
    ...verdict(r.ok, r.needs_human, 'daily maintenance', r.notice, c),
  ].join('\n');
}

export function renderWeekly(r: WeeklyReport, c: ChalkInstance): string {
  const i = r.integration;
  return [
    `weekly maintenance ${r.maintenance_id}`,
    `1. integration check: ${'error' in i ? i.error : `${i.ok ? 'ok' : 'FAILED'}, delivery ${formatPercent(i.delivery_ratio, 2)}, p95 ${formatMs(i.rtt_ms.p95)}`}`,
    ...r.latency.map(
      (l) =>
        `2. latency (${l.source}): p50 ${formatMs(l.p50_ms)}, p95 ${formatMs(l.p95_ms)}, mean ${formatMs(l.mean_ms)} over ${l.samples}`,
    ),
    `3. security events (7 days): ${r.security_events_7d ?? '-'}`,
    `4. capacity: ${r.capacity.agents}/${r.capacity.max_agents} agents (headroom ${formatPercent(r.capacity.headroom_ratio)}), ${formatQuantity(r.capacity.memory_per_agent_mb, 'MiB')} per agent`,
    `   report: ${r.report_file}`,
    ...verdict(r.ok, r.needs_human, 'weekly maintenance', r.notice, c),
  ].join('\n');
}

export function renderCron(p: CronPlan): string {
  return [
    p.written ? `wrote ${p.cron_file}:` : `# ${p.cron_file} (install with --write):`,
    p.cron_text,
    p.written ? `wrote ${p.logrotate_file}:` : `# ${p.logrotate_file}:`,
    p.logrotate_text,
  ].join('\n');
}
