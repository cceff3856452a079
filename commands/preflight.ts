import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type ConfigFlags, shared, withConfigOptions, withJson } from '../src/cli/options.js';
import { ExitCode } from '../src/errors.js';
import { runPreflight } from '../src/ops/preflight/index.js';
import { resolveState } from '../src/state/state-dir.js';
import { createProgress, MARK } from '../src/ui/progress.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(withConfigOptions(cmd))
    .addOption(shared('stage'))
    .addOption(shared('state-dir'))
    .addOption(shared('supervisor'))
    .addOption(shared('service-user'))
    .action(
      async (
        flags: ConfigFlags & { stateDir?: string; json?: boolean; supervisor?: string; serviceUser?: string },
      ) => {
        const out = io.output(flags);
        const progress = await createProgress(ctx, Boolean(flags.json));
        const report = await runPreflight(ctx, {
          configFile: flags.config,
          set: flags.set,
          stage: flags.stage,
          state: resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage),
          supervisor: flags.supervisor,
          serviceUser: flags.serviceUser,
          onStart: (name) => progress.step(name, 'running'),
          onCheck: (r) => progress.step(r.name, r.status, r.detail),
        }).finally(() => progress.close());
        out.result(report, (r, c, shown) => {
          const paint = { ok: c.green, warn: c.yellow, fail: c.red };
          const fixes = r.checks.filter((k) => k.hint && k.status !== 'ok');
          return [
            ...r.checks
              .filter((k) => !shown.has(k.name))
              .map(
                (k) =>
                  `${paint[k.status](MARK[k.status])} ${k.name}${c.dim(` — ${k.detail}`)}${fixes.includes(k) ? `\n    ${c.dim('fix:')} ${k.hint}` : ''}`,
              ),
            // Checks already printed as progress lines: only what to do about them.
            ...fixes.filter((k) => shown.has(k.name)).map((k) => `${c.dim('fix:')} ${k.name} — ${k.hint}`),
            r.ok ? c.green(r.verdict) : c.red(r.verdict),
          ].join('\n');
        });
        if (!report.ok) io.setExitCode(ExitCode.checkFailed);
      },
    );
}
