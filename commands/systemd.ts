import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { withFlags } from '../src/cli/options.js';
import { ExitCode } from '../src/errors.js';
import { resolveSystemdSettings } from '../src/ops/fleet/systemd.js';
import { installSystemd, uninstallSystemd } from '../src/ops/fleet/systemd-install.js';
import { resolveState } from '../src/state/state-dir.js';

interface Flags {
  stateDir?: string;
  unitDir?: string;
  serviceUser?: string;
  dryRun?: boolean;
  json?: boolean;
}

const options = (c: Command) =>
  withFlags(c, 'state-dir', 'unit-dir', 'service-user', 'json').option(
    '--dry-run',
    'print the units and the actions, change nothing',
  );

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const settingsOf = (flags: Flags) => {
    const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
    return {
      state,
      settings: resolveSystemdSettings(state, {
        unitDir: flags.unitDir,
        user: flags.serviceUser,
        env: ctx.env,
      }),
    };
  };
  options(
    cmd
      .command('install')
      .description(
        "run the state's recorded services as systemd units (their launch specs, Restart=on-failure, a dedicated user)",
      ),
  ).action(async (flags: Flags) => {
    const { state, settings } = settingsOf(flags);
    const r = await installSystemd(state, settings, Boolean(flags.dryRun), ctx);
    io.output(flags).result(r, (r, c) =>
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
    if (r.results.some((x) => !x.ok)) io.setExitCode(ExitCode.checkFailed);
  });
  options(
    cmd
      .command('uninstall')
      .description("stop and disable the state's units and remove the unit files ifmesh wrote"),
  ).action(async (flags: Flags) => {
    const { state, settings } = settingsOf(flags);
    const r = await uninstallSystemd(state, settings, Boolean(flags.dryRun), ctx);
    io.output(flags).result(r, (r, c) =>
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
    if (r.failed.length) io.setExitCode(ExitCode.checkFailed);
  });
}
