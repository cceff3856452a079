import { defineCommand } from '../../src/cli/define.js';
import { formatDuration } from '../../src/ui/units.js';

const MODES = {
  redis: 'every instance active, one mesh shared through Redis',
  standby: 'one active instance, the others hot standbys (no Redis: apt-get install redis-server)',
  single: 'one instance',
} as const;

export default defineCommand<{ json?: boolean }, [], 'config' | 'state'>({
  path: 'status',
  examples: ['ifmesh status', 'ifmesh status --json'],
  flags: ['stage', 'state-dir', 'config', 'set', 'json'],
  // Not 'fleet': status builds its own view of the state, and names a torn record in it; the fleet
  // view would be built a second time only to warn about that record on stderr as well.
  needs: ['config', 'state'],
  async run({ needs, ctx, out }) {
    const { status } = await import('../../src/ops/stack/status.js');
    const report = await status(needs.state, needs.config, ctx);
    out.result(report, (r, c) => {
      // Answered with a certificate this command cannot verify: one line per fix (--ca FILE, renew…).
      const byFix = new Map<string, string[]>();
      for (const k of r.components)
        if (k.unverified) byFix.set(k.unverified.fix, [...(byFix.get(k.unverified.fix) ?? []), k.name]);
      // What was killed midway comes first: it explains whatever below looks half-done.
      const notes = [
        ...r.interrupted.map((i) => c.red(`✗ interrupted: ${i.hint}`)),
        ...r.unreadable_files.map((u) => c.red(`✗ ${u.error}: ${u.fix}`)),
        ...r.unreadable_records.map((u) =>
          c.red(`✗ ${u.file} no longer parses: process ${u.name} is not shown below; ${u.fix}`),
        ),
        ...r.held_locks.map((l) =>
          l.corrupt
            ? c.red(
                `✗ ${l.lock} no longer parses: every deploy, canary and rollback fails on it; if no ifmesh command runs, rm ${l.lock}`,
              )
            : l.persistent
              ? c.yellow(
                  `! ${l.lock} is held by ${l.purpose} since ${l.since}: deploys, canaries and rollbacks wait${l.release_hint ? ` (${l.release_hint})` : ''}`,
                )
              : c.dim(`  ${l.lock} is held by pid ${l.pid} (${l.purpose}) since ${l.since}`),
        ),
        ...r.stale_locks.map((l) =>
          c.dim(
            `  ${l.lock} is left by pid ${l.pid} (${l.purpose}), which is gone: the next run takes it over`,
          ),
        ),
        ...[...byFix].map(([fix, names]) =>
          c.yellow(`! ${names.join(', ')} answered with a certificate this command cannot verify: ${fix}`),
        ),
      ];
      if (!r.exists)
        return [
          ...notes,
          `nothing is recorded in ${r.state_dir}; start a mesh with 'ifmesh up' or 'ifmesh deploy'`,
        ].join('\n');
      const rows = r.components.map((k) => {
        const mark = k.healthy ? c.green('✓') : k.running ? c.yellow('!') : c.red('✗');
        const pid = k.running ? `pid ${k.pid}`.padEnd(11) : c.red('not running'.padEnd(11));
        const extra = [
          k.uptime_s !== null ? `up ${formatDuration(k.uptime_s * 1000)}` : '',
          k.restarts ? `${k.restarts} restart${k.restarts === 1 ? '' : 's'}` : '',
          k.unit ? `systemd ${k.unit}` : '',
        ].filter(Boolean);
        const loop = k.crash_loop
          ? c.red(
              ` crash loop since ${k.crash_loop.since} (${k.crash_loop.tries} restarts), no more tries: why, in ifmesh logs ${k.name} -n 20 --state-dir ${r.state_dir}; fix it, then run the deploy (or up) again`,
            )
          : '';
        // Nothing restarts the services while it is down: say how to bring it back.
        const fix =
          k.role === 'supervisor' && !k.running
            ? c.red(
                ` nothing restarts a dead service now: ifmesh supervise --detach --state-dir ${r.state_dir}`,
              )
            : '';
        const said = k.health
          ? c.yellow(` answers ${k.health.status}${k.health.reason ? ` (${k.health.reason})` : ''}`)
          : '';
        return `${mark} ${k.name.padEnd(22)} ${pid} ${k.url ?? ''}${said}${extra.length ? c.dim(` ${extra.join(', ')}`) : ''}${loop}${fix}`;
      });
      if (!r.running)
        return [
          ...notes,
          ...rows,
          r.unreadable_records.length
            ? c.red(
                `  nothing whose record reads is running; the processes of the records above may be: fix those first`,
              )
            : `  nothing is running; start it again with 'ifmesh up' or 'ifmesh deploy'`,
        ].join('\n');
      return [
        ...notes,
        ...rows,
        r.mesh
          ? r.mesh.agents >= 2 && r.mesh.connected === 0
            ? // Processes up, mesh not: the exit code is the processes'; verify judges the mesh.
              c.yellow(
                `! mesh: ${r.mesh.agents} agents, no connection reported connected: ifmesh verify --state-dir ${r.state_dir} says why (pairs still forming, or failing)`,
              )
            : `  mesh: ${r.mesh.agents} agents, ${r.mesh.connected} connection reports connected`
          : r.components.some((k) => k.role === 'signaling' && k.unverified)
            ? c.yellow('  mesh: not read (certificates not verified, see above)')
            : r.components.some((k) => k.role === 'signaling' && k.health)
              ? c.red(
                  `  mesh: not read: no signaling instance is ok${r.components.some((k) => k.health?.reason === 'cluster_store_unreachable') ? ': the Redis they share (SIGNALING_CLUSTER_URL) does not answer; bring it back (its record above, its log: ifmesh logs deploy-redis)' : ' (see above)'}`,
                )
              : c.red('  mesh: no signaling instance answers'),
        // A running agent process says nothing of whether it is in the mesh (blocked, refused, lost).
        ...(r.mesh?.unregistered.length
          ? [
              c.yellow(
                `! not registered: ${r.mesh.unregistered.join(', ')} of the current release (its process may run): why in ifmesh logs deploy-agent-${r.mesh.unregistered[0]} --state-dir ${r.state_dir}; a blocked one: ifmesh agents list`,
              ),
            ]
          : []),
        ...(r.signaling_mode
          ? [
              r.mesh
                ? `  signaling: ${MODES[r.signaling_mode]}`
                : `  signaling: ${r.signaling_mode} mode, as recorded (no instance answers now)`,
            ]
          : []),
        ...(r.witness
          ? [
              r.witness.answers
                ? `  witness: ${r.witness.url} answers`
                : c.yellow(
                    `! witness: ${r.witness.url} does not answer: the audit trail waits in each process's spool; bring it back, then \`ifmesh witness spool --flush\``,
                  ),
            ]
          : []),
      ].join('\n');
    });
    // Unreadable records: their processes may well run, so not "nothing runs" (3).
    if (!report.running && report.unreadable_records.length === 0 && report.unreadable_files.length === 0)
      return 'unreachable';
    return report.healthy ? undefined : 'checkFailed';
  },
});
