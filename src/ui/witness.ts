import type { ChalkInstance } from 'chalk';
import type { MigrateReport } from '../ops/witness/migrate.js';
import type { SpoolReport } from '../ops/witness/spool.js';
import type { TrustReport } from '../ops/witness/trust.js';
import type { VerifyReport } from '../ops/witness/verify.js';
import { formatBytes, formatDuration } from './units.js';

function summary(ev: Record<string, unknown>): string {
  const meta = ev.metadata && typeof ev.metadata === 'object' ? JSON.stringify(ev.metadata) : '';
  return meta.length > 80 ? `${meta.slice(0, 77)}…` : meta;
}

export function eventLine(ev: Record<string, unknown>, c: ChalkInstance): string {
  const who = [ev.agent_id, ev.peer_id].filter(Boolean).join('→');
  return `${c.dim(String(ev.timestamp ?? ''))} ${c.dim(`#${ev.id}`)} ${c.bold(String(ev.event))}${who ? ` ${who}` : ''} ${c.dim(summary(ev))}`.trimEnd();
}

export function renderVerify(r: VerifyReport, c: ChalkInstance): string {
  const lines = [
    `${r.ok ? c.green('✓ intact') : c.red('✗ NOT intact')}: ${r.source}`,
    `  ${r.tree_size} events, ${r.events_checked} checked, ${r.events_pruned} pruned, ${r.checkpoints_verified} checkpoint(s) verified`,
  ];
  if (r.held_checkpoint)
    lines.push(`  held checkpoint: size ${r.held_checkpoint.size}, seen ${r.held_checkpoint.seen_at}`);
  if (r.unsigned_tail)
    lines.push(c.yellow(`  ${r.unsigned_tail} event(s) after the newest signed checkpoint`));
  if (r.first_bad_seq !== null) lines.push(c.red(`  first bad sequence number: ${r.first_bad_seq}`));
  for (const p of r.problems)
    lines.push(`  ${c.red(p.kind)}${p.seq !== null ? ` at ${p.seq}` : ''}: ${p.detail}`);
  return lines.join('\n');
}

export function renderSpool(r: SpoolReport, c: ChalkInstance): string {
  if (r.spools.length === 0) return `${c.green('✓')} nothing waiting in ${r.dir}`;
  return [
    `${r.pending_events} event(s) waiting in ${r.dir}`,
    ...r.spools.map(
      (s) =>
        `  ${s.producer}: ${s.pending_events} event(s), ${formatBytes(s.pending_bytes)}${s.locked_by ? c.dim(` (held by pid ${s.locked_by})`) : ''}${
          s.flushed === true ? c.green(' flushed') : s.flushed === false ? c.yellow(' not flushed') : ''
        }`,
    ),
  ].join('\n');
}

export function renderTrust(r: TrustReport, c: ChalkInstance): string {
  const held = r.held
    ? `${r.held.origin} (key ${r.held.fingerprint ?? 'not held'})`
    : c.dim('nothing: a URL not seen before');
  const verdict = r.accepted
    ? c.green(`✓ ${r.url} is now trusted to sign as ${r.presented.origin}`)
    : r.changed
      ? c.red(`✗ the key changed; nothing recorded (pass --yes to accept the presented key)`)
      : c.dim('nothing recorded (pass --yes to record it)');
  return [
    `${r.url}`,
    `  held:      ${held}`,
    `  presented: ${r.presented.origin} (key ${r.presented.fingerprint}), ${r.presented.size} events`,
    verdict,
  ].join('\n');
}

export function renderMigrate(r: MigrateReport, c: ChalkInstance): string {
  if (r.dry_run)
    return [
      `would copy ${r.to_copy} event(s) and ${r.checkpoints} checkpoint(s) from ${r.source} to ${r.target}`,
      r.target_size ? `  the target already holds the first ${r.target_size}: resuming after them` : '',
    ]
      .filter(Boolean)
      .join('\n');
  return [
    `${r.ok ? c.green('✓ migrated') : c.red('✗ migration does not match')}: ${r.source} -> ${r.target}`,
    `  ${r.copied} event(s) copied${r.target_size ? ` (resumed after ${r.target_size})` : ''} in ${formatDuration(r.elapsed_ms)} (${r.events_per_second} events/s), ${r.checkpoints_copied} checkpoint(s)`,
    `  tree size ${r.tree_size}, root ${r.target_root}${r.ok ? ' (same as the source)' : c.red(` (source: ${r.source_root})`)}`,
  ].join('\n');
}
