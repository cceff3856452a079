import { defineCommand } from '../../src/cli/define.js';
import { durationFlag, intFlag } from '../../src/cli/options.js';
import { QUERY_FLAGS, type WitnessQueryFlags } from './flags.js';

type Flags = WitnessQueryFlags & { lines: string; follow?: boolean; interval: string };

export default defineCommand<Flags>({
  path: 'witness tail',
  summary: 'print the newest events; with --follow, keep printing new ones',
  examples: ['ifmesh witness tail -n 50 --follow --event connection_state_changed'],
  flags: [
    ...QUERY_FLAGS,
    { flags: '-n, --lines <n>', description: 'how many recent events to print first', default: '20' },
    { flags: '-f, --follow', description: 'keep polling for new events until interrupted' },
    { flags: '--interval <duration>', description: 'poll interval with --follow', default: '1s' },
  ],
  async run({ flags, ctx, io, out }) {
    const lines = intFlag(flags.lines, '--lines', 0, 10_000);
    const intervalMs = durationFlag(flags.interval, '--interval', { min: 100 });
    const [{ witnessEndpoint, observeWitness }, { buildQueryBody }, tail, { eventLine }, { resolveState }] =
      await Promise.all([
        import('./client.js'),
        import('../../src/ops/witness/query.js'),
        import('../../src/ops/witness/tail.js'),
        import('../../src/ui/witness.js'),
        import('../../src/state/state-dir.js'),
      ]);
    const { url } = await witnessEndpoint(flags, ctx);
    const o = {
      url,
      base: buildQueryBody(undefined, { ...flags, since: flags.since ?? '1h', limit: '10000' }),
      token: ctx.env.WITNESS_QUERY_TOKEN,
      dispatcher: ctx.dispatcher,
      lines,
      print: (e: Record<string, unknown>) =>
        ctx.stdout.write(`${flags.json ? JSON.stringify(e) : eventLine(e, out.c)}\n`),
    };
    const { last, cursor } = await tail.tailWitness(o);
    const failed = await observeWitness(url, out, resolveState(ctx.cwd, ctx.env, flags.stateDir), ctx);
    for (const e of last) o.print(e);
    if (flags.follow) {
      io.claimSignal();
      const warn = (m: string) => out.warn(m);
      await tail.followWitness({ ...o, intervalMs, clock: ctx.clock, signal: ctx.signal, warn }, cursor);
    }
    return failed ? 'checkFailed' : undefined;
  },
});
