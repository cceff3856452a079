import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { withJson } from '../src/cli/options.js';
import { ExitCode } from '../src/errors.js';
import { runSelftest } from '../src/ops/selftest.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(cmd).action(async (flags: { json?: boolean }) => {
    const out = io.output(flags);
    const report = await runSelftest({ cwd: ctx.cwd, env: ctx.env, now: () => ctx.clock.now() });
    out.result(report, (r, c) =>
      [
        ...r.checks.map((k) => `${k.ok ? c.green('✓') : c.red('✗')} ${k.name}${c.dim(` — ${k.detail}`)}`),
        r.ok
          ? c.green('all checks passed')
          : c.red(`${r.checks.filter((k) => !k.ok).length} check(s) failed`),
      ].join('\n'),
    );
    if (!report.ok) io.setExitCode(ExitCode.checkFailed);
  });
}
