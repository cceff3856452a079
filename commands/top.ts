import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type ConfigFlags, durationFlag, withFlags } from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { UnreachableError } from '../src/errors.js';
import { collectMesh, type MeshSample, resolveTargets, topView } from '../src/ops/monitoring/monitor.js';
import { parseThresholds } from '../src/ops/monitoring/thresholds.js';
import { resolveState } from '../src/state/state-dir.js';
import { topLines } from '../src/ui/top.js';

type Flags = ConfigFlags & {
  json?: boolean;
  signaling?: string;
  witness?: string;
  stateDir?: string;
  threshold?: string[];
  interval: string;
};

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withFlags(cmd, 'signaling', 'witness', 'state-dir', 'config', 'set', 'json')
    .option(
      '--threshold <NAME=VALUE>',
      'override a threshold, e.g. memory_mb=500; repeatable',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option('--interval <duration>', 'refresh interval of the live view', '2s')
    .action(async (flags: Flags) => {
      const loaded = await loadCommandConfig(ctx, flags);
      const targets = resolveTargets(flags, ctx.env, loaded, resolveState(ctx.cwd, ctx.env, flags.stateDir));
      const thresholds = parseThresholds(flags.threshold);
      const intervalMs = durationFlag(flags.interval, '--interval', { min: 200, max: 600_000 });
      let prev: MeshSample | undefined;
      const next = async () => {
        const cur = await collectMesh({
          signaling: targets.signaling,
          witness: targets.witness,
          now: ctx.clock.now,
          dispatcher: ctx.dispatcher,
        });
        if (cur.instances.every((i) => !i.up))
          throw new UnreachableError(
            `no signaling instance answers: ${cur.instances.map((i) => `${i.url} (${i.error})`).join(', ')}`,
            'start the mesh with `ifmesh up`, or pass --signaling URL',
          );
        const view = topView(cur, prev, thresholds, targets.tlsCert);
        prev = cur;
        return view;
      };
      const stdin = ctx.stdin as NodeJS.ReadStream;
      if (!flags.json && ctx.stdout.isTTY && stdin.isTTY) {
        const { runTopInk } = await import('../src/ui/top-view.js');
        await runTopInk(ctx.stdout as NodeJS.WriteStream, stdin, { next, intervalMs }, ctx.signal);
        return;
      }
      // No terminal (or --json): one snapshot, two looks a refresh apart so rates have a value.
      await next();
      await ctx.clock.sleep(Math.min(intervalMs, 2_000), ctx.signal);
      const view = await next();
      io.output(flags).result(view, (v) =>
        topLines(v, { width: 80, height: 1_000 })
          .map((l) => l.text)
          .join('\n'),
      );
    });
}
