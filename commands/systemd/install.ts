import { defineCommand, failedIf } from '../../src/cli/define.js';
import { SYSTEMD_FLAGS, type SystemdFlags, settingsOf } from './flags.js';

export default defineCommand<SystemdFlags, [], 'state'>({
  path: 'systemd install',
  summary:
    "run the state's recorded services as systemd units (their launch specs, Restart=on-failure, a dedicated user)",
  examples: ['ifmesh systemd install --dry-run', 'ifmesh systemd install --service-user ifmesh'],
  flags: SYSTEMD_FLAGS,
  needs: ['state'],
  async run({ flags, needs: { state }, ctx, out }) {
    const { installSystemd } = await import('../../src/ops/fleet/systemd-install.js');
    const r = await installSystemd(state, await settingsOf(state, flags, ctx), Boolean(flags.dryRun), ctx);
    out.result(r, (r, c) =>
      [
        r.applied
          ? `${r.results.every((x) => x.ok) ? c.green('✓') : c.red('✗')} ${r.results.length} services run under systemd (${r.systemctl}), as ${r.user}, units in ${r.unit_dir}`
          : `${c.bold('plan')} (dry run: nothing changed): units in ${r.unit_dir}, run as ${r.user}`,
        ...(r.applied
          ? r.results.map((x) => `  ${x.ok ? c.green('✓') : c.red('✗')} ${x.name.padEnd(22)} ${x.detail}`)
          : [
              ...[...new Map(r.units.flatMap((u) => u.files.map((f) => [f.file, f.content]))).entries()].map(
                ([f, content]) => `${c.dim(`--- ${r.unit_dir}/${f}`)}\n${content}`,
              ),
              'actions:',
              ...r.actions.map((a) => `  ${a}`),
            ]),
        ...r.skipped.map((s) => c.dim(`  not a unit: ${s.name}: ${s.why}`)),
        r.units.length === 0
          ? "  nothing to install: start services with 'ifmesh up' or 'ifmesh deploy' first"
          : '',
      ]
        .filter(Boolean)
        .join('\n'),
    );
    return failedIf(r.results.some((x) => !x.ok));
  },
});
