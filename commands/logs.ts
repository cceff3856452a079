import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { intFlag, shared } from '../src/cli/options.js';
import { UsageError } from '../src/errors.js';
import { followJournals, lastLines, logSources } from '../src/ops/fleet/logs.js';
import { resolveState } from '../src/state/state-dir.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  cmd
    .argument('[name]', 'component (witness, signaling-1, coturn-1, agents…); default: all')
    .option('-n, --lines <n>', 'lines to print from the end of each log', '50')
    .option('-f, --follow', 'keep printing new lines until interrupted')
    .addOption(shared('state-dir'))
    .action(
      async (name: string | undefined, flags: { lines: string; follow?: boolean; stateDir?: string }) => {
        const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
        const all = logSources(state);
        if (name && !all.some((s) => s.name === name))
          throw new UsageError(
            `no log for ${name} in ${state.logs} or the journal`,
            all.length ? `one of: ${all.map((s) => s.name).join(', ')}` : "start the stack with 'ifmesh up'",
          );
        const sources = name ? all.filter((s) => s.name === name) : all;
        const n = intFlag(flags.lines, '--lines', 0, 1_000_000);
        const write = (k: string, line: string) =>
          ctx.stdout.write(sources.length > 1 ? `${k} | ${line}\n` : `${line}\n`);
        for (const s of sources) for (const line of lastLines(state, s, n)) write(s.name, line);
        if (!flags.follow) return;
        io.claimSignal();
        // Units: journalctl -f; files: read what was appended, every 250 ms.
        const journals = followJournals(
          state,
          sources.filter((s) => 'unit' in s),
          write,
          ctx.signal,
        );
        const files = sources.filter((s) => 'file' in s);
        const offsets = new Map(files.map((s) => [s.name, statSync(s.file).size]));
        while (!ctx.signal.aborted) {
          await ctx.clock.sleep(250, ctx.signal).catch(() => {});
          for (const s of files) {
            const size = statSync(s.file).size;
            const from = offsets.get(s.name) ?? 0;
            if (size <= from) continue;
            const chunk = readFileSync(s.file).subarray(from, size).toString('utf8');
            offsets.set(s.name, size);
            for (const line of chunk.split('\n').filter(Boolean)) write(s.name, line);
          }
        }
        await journals;
      },
    );
}
