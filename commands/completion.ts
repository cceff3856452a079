import { Argument, type Command } from 'commander';
import { completionScript, SHELLS, type Shell } from '../src/cli/completion.js';
import type { CommandIo } from '../src/cli/define.js';

export function register(cmd: Command, io: CommandIo): void {
  cmd
    .addArgument(new Argument('<shell>', 'the shell to complete in').choices(SHELLS))
    .action((shell: Shell) => {
      // The registry loads every command's definition for this one (`tree`), so the program is whole.
      let root = cmd;
      while (root.parent) root = root.parent;
      io.ctx.stdout.write(completionScript(shell, root));
    });
}
