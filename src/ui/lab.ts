// `ifmesh lab` for people: the plan of --dry-run, the lab's addresses, and what down removed.
import type { ChalkInstance } from 'chalk';
import type { LabDownReport, LabDryRun, LabState, LabStatusReport, LabUpReport } from '../ops/lab/lab.js';
import { formatDuration } from './units.js';

/** An argv as a shell line (quoted where needed), for reading and pasting. */
function shellLine(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function layout(lab: Pick<LabState, 'plan' | 'turn_credentials'> | undefined, c: ChalkInstance): string[] {
  if (!lab) return [];
  const p = lab.plan;
  return [
    `  public   ${p.public.namespace}: signaling ${p.signaling.url}, witness ${p.witness.url}`,
    ...p.turn.map(
      (t) => `  ${t.name.padEnd(8)} ${t.url} (also ${t.addresses[1]}; user ${lab.turn_credentials.username})`,
    ),
    ...p.hosts.map(
      (h) =>
        `  ${h.name.padEnd(8)} ${h.namespace}: ${h.address} ${c.dim(
          h.router ? `behind ${h.nat} NAT ${h.router.wan} (${h.router.namespace})` : 'public, no NAT',
        )}`,
    ),
  ];
}

export function renderLabUp(r: LabUpReport | LabDryRun, c: ChalkInstance): string {
  if (r.dry_run)
    return [
      `lab '${r.plan.name}' (dry run): namespaces ${r.plan.namespaces.join(', ')}`,
      ...r.plan.commands.map(shellLine),
      ...r.processes.map((p) => `${shellLine(p.command)} &`),
    ].join('\n');
  return [
    `${c.green('✓')} lab '${r.lab.name}' up in ${formatDuration(r.elapsed_ms)}`,
    ...layout(r.lab, c),
    c.dim(
      `  run on a host: ifmesh lab run --name ${r.lab.name} h1 -- CMD; TURN password: ifmesh lab status --json`,
    ),
  ].join('\n');
}

export function renderLabDown(r: LabDownReport, c: ChalkInstance): string {
  if (!r.namespaces_removed.length && !r.stopped.length && !r.files_removed.length)
    return `lab '${r.name}': nothing to remove`;
  return [
    `${c.green('✓')} lab '${r.name}' down in ${formatDuration(r.elapsed_ms)}`,
    `  stopped: ${r.stopped.map((p) => `${p.name} (${p.pid})`).join(', ') || 'nothing'}`,
    `  namespaces removed: ${r.namespaces_removed.join(', ') || 'none'}`,
    `  files removed: ${r.files_removed.join(', ') || 'none'}`,
  ].join('\n');
}

export function renderLabStatus(r: LabStatusReport, c: ChalkInstance): string {
  if (!r.exists) return `lab '${r.name}' does not exist (ifmesh lab up --name ${r.name})`;
  const mark = (ok: boolean) => (ok ? c.green('✓') : c.red('✗'));
  return [
    `${mark(r.healthy)} lab '${r.name}' ${r.lab?.status ?? 'without a state file'}`,
    ...layout(r.lab, c),
    ...r.namespaces.filter((n) => !n.present).map((n) => `  ${mark(false)} namespace ${n.namespace} missing`),
    ...r.processes.map((p) => `  ${mark(p.running)} ${p.name} pid ${p.pid} ${c.dim(p.log)}`),
  ].join('\n');
}
