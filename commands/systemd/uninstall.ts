import { defineCommand, failedIf } from '../../src/cli/define.js';
import { SYSTEMD_FLAGS, type SystemdFlags, settingsOf } from './flags.js';

export default defineCommand<SystemdFlags, [], 'state'>({
  path: 'systemd uninstall',
  summary: "stop and disable the state's units and remove the unit files ifmesh wrote",
  examples: ['ifmesh systemd uninstall'],
  flags: SYSTEMD_FLAGS,
  needs: ['state'],
  async run({ flags, needs: { state }, ctx, out }) {
    const { uninstallSystemd } = await import('../../src/ops/fleet/systemd-install.js');
    const r = await uninstallSystemd(state, await settingsOf(state, flags, ctx), Boolean(flags.dryRun), ctx);
    out.result(r, (r, c) =>
      [
        r.applied
          ? `${r.failed.length ? c.red('✗') : c.green('✓')} stopped and disabled ${r.stopped.join(', ') || 'nothing'}; removed ${r.files.length} unit files from ${r.unit_dir}`
          : `${c.bold('plan')} (dry run: nothing changed)`,
        ...(r.applied
          ? r.failed.map((f) => c.red(`  still running: ${f}`))
          : [
              ...r.units.map((u) => `  systemctl disable --now ${u.unit}   (${u.name})`),
              ...r.files.map((f) => `  rm ${r.unit_dir}/${f}`),
              '  systemctl daemon-reload',
            ]),
      ].join('\n'),
    );
    return failedIf(r.failed.length > 0);
  },
});
