import type { ChalkInstance } from 'chalk';
import type { CronPlan } from '../ops/maintenance/cron.js';
import type { DailyReport } from '../ops/maintenance/daily.js';
import type { WeeklyReport } from '../ops/maintenance/weekly.js';

const mb = (b: number) => `${(b / 1_048_576).toFixed(1)} MB`;

function verdict(ok: boolean, needs: string[], what: string, c: ChalkInstance): string[] {
  return ok
    ? [`${c.green('✓')} ${what} complete`]
    : [`${c.red('✗')} ${what}: ${needs.length} thing(s) need a person`, ...needs.map((n) => `  - ${n}`)];
}

export function renderDaily(r: DailyReport, c: ChalkInstance): string {
  return [
    `daily maintenance ${r.maintenance_id}${r.dry_run ? ' (dry run: nothing changed)' : ''}`,
    `1. certificate: ${r.certificate ? `${r.certificate.days_left} days left (${r.certificate.status})` : 'none configured'}`,
    `2. logs: ${r.logs.length} files, ${mb(r.logs_total_bytes)}`,
    ...r.logs.map((l) => `     ${l.file} ${mb(l.bytes)}`),
    `3. logrotate: ${r.logrotate.ok ? 'ok' : 'FAILED'} (${r.logrotate.config})`,
    `4. witness cleanup (retain ${r.cleanup.retain_days} days): ${r.cleanup.ok ? 'ok' : r.cleanup.error}`,
    `5. health report: ${r.dry_run ? '(not written) ' : ''}${r.report_file}`,
    `   agents ${r.health.total_agents ?? '-'}, connections ${r.health.active_connections ?? '-'}, errors 24h ${r.health.error_count_24h ?? '-'}`,
    ...verdict(r.ok, r.needs_human, 'daily maintenance', c),
  ].join('\n');
}

export function renderWeekly(r: WeeklyReport, c: ChalkInstance): string {
  const i = r.integration;
  return [
    `weekly maintenance ${r.maintenance_id}`,
    `1. integration check: ${'error' in i ? i.error : `${i.ok ? 'ok' : 'FAILED'}, delivery ${(i.delivery_ratio * 100).toFixed(2)} %, p95 ${i.rtt_ms.p95 ?? '-'} ms`}`,
    ...r.latency.map(
      (l) =>
        `2. latency (${l.source}): p50 ${l.p50_ms ?? '-'} ms, p95 ${l.p95_ms ?? '-'} ms, mean ${l.mean_ms?.toFixed(1) ?? '-'} ms over ${l.samples}`,
    ),
    `3. security events (7 days): ${r.security_events_7d ?? '-'}`,
    `4. capacity: ${r.capacity.agents}/${r.capacity.max_agents} agents (headroom ${(r.capacity.headroom_ratio * 100).toFixed(0)} %), ${r.capacity.memory_per_agent_mb ?? '-'} MB per agent`,
    `   report: ${r.report_file}`,
    ...verdict(r.ok, r.needs_human, 'weekly maintenance', c),
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
