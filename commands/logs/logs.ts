import { defineCommand } from '../../src/cli/define.js';
import { intFlag } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';

export default defineCommand<{ lines: string; follow?: boolean }, [string | undefined], 'state'>({
  path: 'logs',
  examples: ['ifmesh logs signaling-1 -n 100', 'ifmesh logs --follow'],
  args: [
    {
      name: '[name]',
      description:
        'component (witness, signaling-1, coturn-1, agents…; signaling-1 also finds deploy-signaling-1); default: all',
    },
  ],
  flags: [
    { flags: '-n, --lines <n>', description: 'lines to print from the end of each log', default: '50' },
    { flags: '-f, --follow', description: 'keep printing new lines until interrupted' },
    'state-dir',
  ],
  needs: ['state'],
  async run({ args: [name], flags, needs: { state }, ctx, io }) {
    const { followLogs, lastLines, logSources, selectLogSources } = await import(
      '../../src/ops/fleet/logs.js'
    );
    const all = logSources(state);
    const sources = name ? selectLogSources(all, name) : all;
    if (name && sources.length === 0)
      throw new UsageError(
        `no log for ${name} in ${state.logs} or the journal`,
        all.length
          ? `one of: ${all.map((s) => s.name).join(', ')}`
          : "start the stack with 'ifmesh up' or 'ifmesh deploy'",
      );
    const n = intFlag(flags.lines, '--lines', 0, 1_000_000);
    const write = (k: string, line: string) =>
      ctx.stdout.write(sources.length > 1 ? `${k} | ${line}\n` : `${line}\n`);
    for (const s of sources) for (const line of lastLines(state, s, n)) write(s.name, line);
    if (!flags.follow) return;
    io.claimSignal();
    await followLogs(state, sources, write, ctx);
  },
});
