import type { ChalkInstance } from 'chalk';
import type { CheckReport } from '../ops/monitoring/check.js';
import type { ExportReport } from '../ops/monitoring/export.js';
import { formatQuantity } from './units.js';

export function renderExport(r: ExportReport): string {
  return [
    `wrote ${r.files.scrape_config}`,
    `wrote ${r.files.alerts} (${r.alerts.length} alerts)`,
    `wrote ${r.files.dashboard} (${r.panels.length} panels)`,
    `wrote ${r.files.alertmanager} (critical → ${r.routing.critical ?? 'nobody'}, warning → ${r.routing.warning ?? 'nobody'})`,
    `scraping signaling ${r.targets.signaling.join(', ')}${r.targets.witness ? `, witness ${r.targets.witness}` : ''}`,
    r.alertmanagers.length
      ? `alerts sent to Alertmanager ${r.alertmanagers.join(', ')}`
      : 'no Alertmanager: Prometheus keeps its alerts to itself',
  ].join('\n');
}

/** "<= 0.05" in the value's unit: "<= 5 %". */
const formatThreshold = (threshold: string, unit: string) =>
  threshold.replace(/\d+(\.\d+)?/, (n) => formatQuantity(Number(n), unit));

/** One line per metric: status, name, value, threshold, detail. */
export function renderCheck(r: CheckReport, c: ChalkInstance): string {
  const lines = r.rows.map((row) => {
    const mark =
      row.status === 'ok' ? c.green('ok   ') : row.status === 'alert' ? c.red('ALERT') : c.dim('n/a  ');
    const value = formatQuantity(row.value, row.unit);
    return `${mark} ${row.metric.padEnd(42)} ${value.padEnd(16)} threshold ${formatThreshold(row.threshold, row.unit)}${row.detail ? c.dim(`  ${row.detail}`) : ''}`;
  });
  lines.push(
    r.ok
      ? c.green('all checked metrics within thresholds')
      : c.red(`${r.alerts.length} alert(s): ${r.alerts.join(', ')}`),
  );
  return lines.join('\n');
}
