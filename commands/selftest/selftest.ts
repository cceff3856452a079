import { defineCommand, failedIf } from '../../src/cli/define.js';

export default defineCommand<{ json?: boolean }>({
  path: 'selftest',
  examples: ['ifmesh selftest', 'ifmesh selftest --json'],
  flags: ['json'],
  async run({ ctx, out }) {
    const { runSelftest } = await import('../../src/ops/selftest.js');
    const report = await runSelftest({ cwd: ctx.cwd, env: ctx.env, now: () => ctx.clock.now() });
    out.result(report, (r, c) =>
      [
        ...r.checks.map((k) => `${k.ok ? c.green('✓') : c.red('✗')} ${k.name}${c.dim(` — ${k.detail}`)}`),
        r.ok
          ? c.green('all checks passed')
          : c.red(`${r.checks.filter((k) => !k.ok).length} check(s) failed`),
      ].join('\n'),
    );
    return failedIf(!report.ok);
  },
});
