import { completionScript, SHELLS, type Shell } from '../../src/cli/completion.js';
import { defineCommand } from '../../src/cli/define.js';

/** `completion` needs the whole program: the registry registers every group for it (`tree`). */
export default defineCommand<Record<string, never>, [Shell]>({
  path: 'completion',
  examples: [
    'source <(ifmesh completion bash)',
    'ifmesh completion bash > ~/.local/share/bash-completion/completions/ifmesh',
    'ifmesh completion zsh > ~/.zfunc/_ifmesh   # a directory on $fpath, before compinit',
    'ifmesh completion fish > ~/.config/fish/completions/ifmesh.fish',
  ],
  args: [{ name: '<shell>', description: 'the shell to complete in', choices: SHELLS }],
  flags: [],
  async run({ args: [shell], ctx, command }) {
    let root = command;
    while (root.parent) root = root.parent;
    ctx.stdout.write(completionScript(shell, root));
  },
});
