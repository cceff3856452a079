// rotate-keys: completed/total as a bar on a terminal (the ink progress view), plain lines otherwise.
import type { ChalkInstance } from 'chalk';
import type { RotationPlan, RotationReport } from '../ops/keys/rotate.js';
import type { Progress } from './progress.js';

export function bar(completed: number, total: number, width = 20): string {
  const frac = total === 0 ? 1 : completed / total;
  const full = Math.round(frac * width);
  return `[${'█'.repeat(full)}${'░'.repeat(width - full)}] ${completed}/${total} (${Math.round(frac * 100)}%)`;
}

/** Reports each change of completed/total once: the ink view redraws its bar, plain output prints a line. */
export function rotationProgress(
  progress: Progress,
  live: boolean,
): (completed: number, total: number) => void {
  let last = '';
  return (completed, total) => {
    const text = bar(completed, total);
    if (text === last) return;
    last = text;
    if (live) progress.step('rotating keys', completed === total ? 'ok' : 'running', text);
    else progress.info(`progress: ${completed}/${total}`);
  };
}

export function renderRotationPlan(p: RotationPlan): string {
  return [
    'plan (dry run, nothing changed; instances sharing a cluster_id are asked once for the cluster):',
    ...p.signaling.map(
      (u) =>
        `  POST ${u}/admin/rotate-keys  reason=${p.reason}${p.incident_id ? ` incident=${p.incident_id}` : ''}${p.force_immediate ? ' force_immediate' : ''}`,
    ),
    `  poll GET …/admin/key-rotation-status until every agent rotated, at most ${p.timeout_ms / 1000} s`,
    `  log ${p.events.join(', ')}`,
  ].join('\n');
}

export function renderRotation(r: RotationReport, c: ChalkInstance): string {
  const lines = [
    r.ok
      ? `${c.green('✓')} keys rotated: ${r.completed}/${r.total} agents`
      : `${c.red('✗')} key rotation incomplete: ${r.completed}/${r.total} agents`,
  ];
  if (r.pending.length) lines.push(`  did not answer in time: ${r.pending.join(', ')}`);
  for (const i of r.instances) if (i.error) lines.push(`  ${i.url}: ${i.error}`);
  return lines.join('\n');
}
