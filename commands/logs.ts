import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { shared } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { UsageError } from '../src/errors.js';
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
        const dir = state.logs;
        const all = existsSync(dir)
          ? readdirSync(dir)
              .filter((f) => f.endsWith('.log'))
              .map((f) => f.slice(0, -4))
          : [];
        if (name && !all.includes(name))
          throw new UsageError(
            `no log for ${name} in ${dir}`,
            all.length ? `one of: ${all.join(', ')}` : "start the stack with 'ifmesh up'",
          );
        const names = name ? [name] : all.sort();
        const n = Number(flags.lines) || 50;
        const offsets = new Map<string, number>();
        for (const k of names) {
          const file = state.logFile(k);
          const text = readFileSync(file, 'utf8');
          for (const line of text.split('\n').filter(Boolean).slice(-n))
            ctx.stdout.write(names.length > 1 ? `${k} | ${line}\n` : `${line}\n`);
          offsets.set(k, Buffer.byteLength(text));
        }
        if (!flags.follow) return;
        io.claimSignal();
        while (!ctx.signal.aborted) {
          await ctx.clock.sleep(250, ctx.signal).catch(() => {});
          for (const k of names) {
            const file = state.logFile(k);
            const size = statSync(file).size;
            const from = offsets.get(k) ?? 0;
            if (size <= from) continue;
            const chunk = readFileSync(file).subarray(from, size).toString('utf8');
            offsets.set(k, size);
            for (const line of chunk.split('\n').filter(Boolean))
              ctx.stdout.write(names.length > 1 ? `${k} | ${line}\n` : `${line}\n`);
          }
        }
      },
    );
}
