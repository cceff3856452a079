import { defineCommand } from '../../src/cli/define.js';
import { durationFlag } from '../../src/cli/options.js';
import type { CanaryFlags } from './options.js';

export default defineCommand<CanaryFlags, [], 'state'>({
  path: 'canary status',
  summary: 'the canary in progress or the last one; its exit codes: ifmesh help exit-codes',
  examples: ['ifmesh canary status --watch --timeout 10m'],
  flags: [
    'json',
    {
      flags: '--watch',
      description:
        'follow it until it completes, fails, is aborted or frozen, or its runner dies: redrawn on a terminal, a line per change in a pipe, NDJSON with --json',
    },
    {
      flags: '--timeout <duration>',
      description: 'with --watch, give up after this long (exit 7)',
      default: '10m',
    },
    'stage',
    'state-dir',
  ],
  needs: ['state'],
  inheritFlags: true,
  async run({ flags, needs: { state }, ctx, io, out }) {
    const [{ canaryStatus }, ui] = await Promise.all([
      import('../../src/ops/rollout/canary.js'),
      import('../../src/ui/rollout.js'),
    ]);
    if (!flags.watch) {
      const st = await canaryStatus(state, undefined, ctx);
      out.result(st, ui.renderCanaryStatus);
      return { exitCode: st.exit_code };
    }
    const timeoutMs = durationFlag(flags.timeout, '--timeout');
    const { watchOutput } = await import('../../src/ui/watch.js');
    io.claimSignal(); // Ctrl-C ends the watch, leaving its last view
    const spec = { key: ui.canaryStatusKey, line: ui.canaryStatusLine, view: ui.renderCanaryStatus };
    const st = await watchOutput(ctx, Boolean(flags.json), spec, (look) =>
      canaryStatus(state, timeoutMs, ctx, look),
    );
    return st ? { exitCode: st.exit_code } : 'interrupted';
  },
});
