import { defineCommand, failedIf } from '../../src/cli/define.js';
import type { ConfigFlags } from '../../src/cli/options.js';
import { createProgress, MARK } from '../../src/ui/progress.js';

type Flags = ConfigFlags & { json?: boolean; supervisor?: string; serviceUser?: string };

export default defineCommand<Flags, [], 'state'>({
  path: 'preflight',
  examples: ['ifmesh preflight', 'ifmesh preflight --config config/webrtc-production.env --json'],
  flags: ['config', 'set', 'json', 'stage', 'state-dir', 'supervisor', 'service-user'],
  needs: ['state'],
  newState: true,
  async run({ flags, needs, ctx, out }) {
    const { runPreflight } = await import('../../src/ops/preflight/index.js');
    const progress = await createProgress(ctx, Boolean(flags.json));
    const report = await runPreflight(ctx, {
      configFile: flags.config,
      set: flags.set,
      stage: flags.stage,
      state: needs.state,
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
    return failedIf(!report.ok);
  },
});
