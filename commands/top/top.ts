import { defineCommand } from '../../src/cli/define.js';
import { durationFlag, MESH_FLAGS } from '../../src/cli/options.js';

type Flags = { json?: boolean; signaling?: string; witness?: string; threshold?: string[]; interval: string };

export default defineCommand<Flags, [], 'config' | 'state'>({
  path: 'top',
  examples: ['ifmesh top', 'ifmesh top --json'],
  flags: [
    ...MESH_FLAGS,
    {
      flags: '--threshold <NAME=VALUE>',
      description: 'override a threshold, e.g. memory_mb=500; repeatable',
      parse: (v: string, p: string[] = []) => [...p, v],
    },
    { flags: '--interval <duration>', description: 'refresh interval of the live view', default: '2s' },
  ],
  needs: ['config', 'state'],
  async run({ flags, needs, ctx, out }) {
    const [{ resolveTargets }, { parseThresholds }, { topFeed, topSnapshot }, { topLines }] =
      await Promise.all([
        import('../../src/ops/monitoring/monitor.js'),
        import('../../src/ops/monitoring/thresholds.js'),
        import('../../src/ops/monitoring/top.js'),
        import('../../src/ui/top.js'),
      ]);
    const targets = resolveTargets(flags, ctx.env, needs.config, needs.state);
    const thresholds = parseThresholds(flags.threshold);
    const intervalMs = durationFlag(flags.interval, '--interval', { min: 200, max: 600_000 });
    const next = topFeed(targets, thresholds, ctx);
    const stdin = ctx.stdin as NodeJS.ReadStream;
    if (!flags.json && ctx.stdout.isTTY && stdin.isTTY) {
      const { runTopInk } = await import('../../src/ui/top-view.js');
      await runTopInk(ctx.stdout as NodeJS.WriteStream, stdin, { next, intervalMs }, ctx.signal);
      return;
    }
    out.result(await topSnapshot(next, intervalMs, ctx), (v) =>
      topLines(v, { width: 80, height: 1_000 })
        .map((l) => l.text)
        .join('\n'),
    );
  },
});
