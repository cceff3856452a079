// rotate-keys: completed/total as a bar on a terminal (the ink progress view), plain lines otherwise.
import type { ChalkInstance } from 'chalk';
import type { PeriodicReport } from '../ops/keys/periodic.js';
import type { RotationPlan, RotationReport } from '../ops/keys/rotate.js';
import { noticeLine } from './maintenance.js';
import type { Progress } from './progress.js';
import { formatDuration } from './units.js';

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
    ...(p.declare_incident
      ? ['  declare a security incident (as `ifmesh incident security`: a SEC- id, the deploy lock, tree 4)']
      : []),
    ...p.signaling.map(
      (u) =>
        `  POST ${u}/admin/rotate-keys  reason=${p.reason}${p.incident_id ? ` incident=${p.incident_id}` : ''}${p.force_immediate ? ' force_immediate' : ''}`,
    ),
    `  poll GET …/admin/key-rotation-status until every agent rotated, at most ${formatDuration(p.timeout_ms)}`,
    `  wait ${formatDuration(p.settle_ms)}, then count failed connections`,
    `  log ${p.events.join(', ')}`,
  ].join('\n');
}

export function renderRotation(r: RotationReport, c: ChalkInstance): string {
  const lines = [
    r.ok
      ? `${c.green('✓')} keys rotated: ${r.completed}/${r.total} agents`
      : // the release's unregistered agents count too: "2/2 agents" read as complete
        `${c.red('✗')} key rotation incomplete: ${r.completed}/${r.total + r.not_registered.length} agents${r.not_registered.length ? ` (${r.not_registered.length} not registered)` : ''}`,
  ];
  if (r.incident_declared) lines.push(`  security incident declared: ${r.incident_declared}`);
  if (r.pending.length) lines.push(`  did not answer in time: ${r.pending.join(', ')}`);
  if (r.not_registered.length)
    lines.push(`  not registered, so not rotated (old keys): ${r.not_registered.join(', ')}`);
  for (const i of r.instances) if (i.error) lines.push(`  ${i.url}: ${i.error}`);
  const s = r.stability;
  if (s) {
    const before = s.failed_before === null ? '' : ` (${s.failed_before} before)`;
    if (s.failed_connections === null)
      lines.push(
        `  ${c.red('✗')} stability after ${formatDuration(s.settle_ms)}: no signaling instance answered`,
      );
    else if (s.failed_connections === 0)
      lines.push(
        `  ${c.green('✓')} all connections stable ${formatDuration(s.settle_ms)} after rotation${before}`,
      );
    else
      lines.push(
        `  ${c.yellow('⚠')} ${s.failed_connections} connections failed after rotation${before}: ${s.failed.map((f) => `${f.agent_id}→${f.peer_id}`).join(', ')}`,
      );
  }
  if (r.next_steps.length) lines.push('next:', ...r.next_steps.map((n) => `  ${n}`));
  return lines.join('\n');
}

export function renderPeriodic(r: PeriodicReport, c: ChalkInstance): string {
  const s = r.schedule;
  const lines: string[] = [];
  if (!s.enabled) lines.push('periodic key rotation is off (ENABLE_SRTP_KEY_ROTATION=false): nothing to do');
  else if (!r.rotated && !r.error)
    lines.push(
      `not due: last rotation ${s.last?.at ?? 'never'}, next due ${s.next_due_at} (every ${formatDuration(s.interval_ms)})`,
    );
  if (r.rotation) lines.push(renderRotation(r.rotation, c));
  if (r.error) lines.push(`${c.red('✗')} scheduled key rotation could not run: ${r.error.message}`);
  if (r.needs_human.length) lines.push(noticeLine(r.notice, c));
  return lines.join('\n');
}
