// `ifmesh completion bash|zsh|fish`: shell completion generated from the command tree commander
// holds once every command is registered. Each script embeds the tree as data (no `ifmesh` run per
// Tab) and walks the words typed so far the same way: flags that take a value skip it, a word naming
// a sub-command of the path so far extends the path. Then it offers, in order: the values of the flag
// just typed (its choices, or files), the flags of the path (a word starting with "-"), its
// sub-commands, or its arguments' choices (else files).
import { type Command, Help, type Option } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

interface FlagNode {
  names: string[];
  takesValue: boolean;
  /** The value's choices; [] when any value goes, `files` when it names a file or directory. */
  choices: string[];
  files: boolean;
  summary: string;
}

interface PathNode {
  /** "" for the program, "canary status" for a sub-command. */
  path: string;
  subs: Array<{ name: string; summary: string }>;
  flags: FlagNode[];
  /** Choices for the positional arguments (`completion <shell>`, `help <command>`). */
  args: string[];
  /** Whether it takes positional arguments at all (offered files when they have no choices). */
  takesArgs: boolean;
}

/** A help line cut to a completion menu's width. */
function short(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  if (one.length <= 70) return one;
  const cut = one.slice(0, 69);
  return `${cut.slice(0, Math.max(cut.lastIndexOf(' '), 40))}…`;
}

/** What `ifmesh help` explains besides the commands. */
export const HELP_TOPICS = ['exit-codes'];

const FILE_VALUE = /file|dir|path|cert|key|db\b/i;

function flagNode(o: Option): FlagNode {
  const takesValue = Boolean(o.required || o.optional);
  const placeholder = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1] ?? '';
  return {
    names: [o.short, o.long].filter((n): n is string => Boolean(n)),
    takesValue,
    choices: [...(o.argChoices ?? [])],
    files: takesValue && !o.argChoices && FILE_VALUE.test(placeholder),
    summary: short(o.description),
  };
}

/** A command's own flags, then those of its ancestors it does not redefine. */
function withInherited(own: FlagNode[], inherited: FlagNode[]): FlagNode[] {
  const taken = new Set(own.flatMap((f) => f.names));
  return [...own, ...inherited.filter((f) => !f.names.some((n) => taken.has(n)))];
}

/** Every command path of the tree, the program first. */
export function completionTree(root: Command): PathNode[] {
  const helper = new Help();
  const nodes: PathNode[] = [];
  /** `helpOf`: this is commander's implicit `help [command]` of that command. */
  const visit = (cmd: Command, path: string[], inherited: FlagNode[], helpOf?: Command) => {
    const subs = helper.visibleCommands(cmd);
    nodes.push({
      path: path.join(' '),
      subs: subs.map((s) => ({ name: s.name(), summary: short(s.summary() || s.description()) })),
      flags: withInherited(helper.visibleOptions(cmd).map(flagNode), inherited),
      // `help <command>`: the commands beside it, and the program's help topics.
      args: helpOf
        ? [...helpOf.commands.map((c) => c.name()), ...(helpOf.parent ? [] : HELP_TOPICS)]
        : cmd.registeredArguments.flatMap((a) => a.argChoices ?? []),
      takesArgs: cmd.registeredArguments.length > 0,
    });
    // A command's options are accepted after its sub-commands too (commander's default).
    const own = withInherited(cmd.options.filter((o) => !o.hidden).map(flagNode), inherited);
    for (const sub of subs)
      visit(sub, [...path, sub.name()], own, cmd.commands.includes(sub) ? undefined : cmd);
  };
  visit(root, [], []);
  return nodes;
}

export function completionScript(shell: Shell, root: Command): string {
  const tree = completionTree(root);
  const name = root.name();
  if (shell === 'bash') return bashScript(name, tree);
  if (shell === 'zsh') return zshScript(name, tree);
  return fishScript(name, tree);
}

/** A single-quoted shell word (bash, zsh). */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** A single-quoted fish word: only \ and ' are special inside. */
const fq = (s: string) => `'${s.replace(/[\\']/g, '\\$&')}'`;

const valued = (n: PathNode) => n.flags.filter((f) => f.takesValue).flatMap((f) => f.names);
const flagNames = (n: PathNode) => n.flags.flatMap((f) => f.names.filter((x) => x.startsWith('--')));

/** `case` arms mapping a path to a list, for bash and zsh (`('x') … ;;` is valid in both). */
function arms(
  tree: PathNode[],
  list: (n: PathNode) => string[],
  assign: (items: string[]) => string,
): string {
  return tree
    .map((n) => [n.path, list(n)] as const)
    .filter(([, items]) => items.length > 0)
    .map(([path, items]) => `    (${sq(path)}) ${assign(items)} ;;`)
    .join('\n');
}

function valueArms(tree: PathNode[], assign: (items: string[]) => string): string {
  const lines: string[] = [];
  for (const n of tree)
    for (const f of n.flags)
      if (f.takesValue && (f.files || f.choices.length))
        for (const flag of f.names)
          lines.push(`    (${sq(`${n.path}|${flag}`)}) ${assign(f.files ? ['@files'] : f.choices)} ;;`);
  return lines.join('\n');
}

/** A function setting REPLY/reply from a `case` on its arguments (valid bash and zsh). */
function caseFn(name: string, subject: string, armLines: string, none: string): string {
  return `${name}() {\n  case "${subject}" in\n${armLines}\n    (*) ${none} ;;\n  esac\n}`;
}

/** The tree as data: sub-commands, flags, flags taking a value, their values, argument choices. */
function dataFns(
  fn: string,
  tree: PathNode[],
  assign: (items: string[]) => string,
  none: string,
  subs: (n: PathNode) => string[],
  flags: (n: PathNode) => string[],
): string {
  return [
    caseFn(`${fn}_subs`, '$1', arms(tree, subs, assign), none),
    caseFn(`${fn}_flags`, '$1', arms(tree, flags, assign), none),
    caseFn(`${fn}_valued`, '$1', arms(tree, valued, assign), none),
    caseFn(`${fn}_value`, '$1|$2', valueArms(tree, assign), none),
    caseFn(
      `${fn}_args`,
      '$1',
      arms(tree, (n) => n.args, assign),
      none,
    ),
  ].join('\n');
}

function header(shell: Shell, name: string, load: string): string {
  return `# ${shell} completion for ${name}, generated by \`${name} completion ${shell}\` from its command tree.\n# ${load}\n`;
}

function bashScript(name: string, tree: PathNode[]): string {
  const words = (items: string[]) => `REPLY=${sq(items.join(' '))}`;
  const fn = `_${name.replace(/\W/g, '_')}`;
  return `${header('bash', name, `Load it with: source <(${name} completion bash); install it: ${name} completion bash > ~/.local/share/bash-completion/completions/${name}`)}
${dataFns(fn, tree, words, "REPLY=''", (n) => n.subs.map((s) => s.name), flagNames)}
${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path='' prev='' i w REPLY IFS=$'\\n'
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if [[ $w == -* ]]; then
      ${fn}_valued "$path"
      if [[ $w != *=* && " $REPLY " == *" $w "* ]]; then
        i=$((i + 1))
        ((i == COMP_CWORD)) && prev=$w
      fi
      continue
    fi
    ${fn}_subs "$path"
    [[ " $REPLY " == *" $w "* ]] && path=\${path:+$path }$w
  done
  if [[ -n $prev ]]; then
    ${fn}_value "$path" "$prev"
    if [[ $REPLY == @files ]]; then COMPREPLY=($(compgen -f -- "$cur"))
    else COMPREPLY=($(IFS=' '; compgen -W "$REPLY" -- "$cur")); fi
    return 0
  fi
  if [[ $cur == -* ]]; then
    ${fn}_flags "$path"
    COMPREPLY=($(IFS=' '; compgen -W "$REPLY" -- "$cur"))
    return 0
  fi
  ${fn}_subs "$path"
  [[ -z $REPLY ]] && ${fn}_args "$path"
  if [[ -n $REPLY ]]; then COMPREPLY=($(IFS=' '; compgen -W "$REPLY" -- "$cur"))
  else COMPREPLY=($(compgen -f -- "$cur")); fi
  return 0
}
complete -F ${fn} ${name}
`;
}

function zshScript(name: string, tree: PathNode[]): string {
  const arr = (items: string[]) => `reply=(${items.map(sq).join(' ')})`;
  const fn = `_${name.replace(/\W/g, '_')}`;
  const described = (n: PathNode) => n.subs.map((s) => `${s.name}:${s.summary}`);
  const flagsDescribed = (n: PathNode) =>
    n.flags.flatMap((f) => f.names.filter((x) => x.startsWith('--')).map((x) => `${x}:${f.summary}`));
  return `#compdef ${name}
${header('zsh', name, `Load it with: source <(${name} completion zsh) after compinit; or save it as _${name} in a directory of $fpath.`)}
${dataFns(fn, tree, arr, 'reply=()', described, flagsDescribed)}
${fn}() {
  local p='' prev='' w s
  local -i i
  local -a reply
  for (( i = 2; i < CURRENT; i++ )); do
    w=\${words[i]}
    if [[ $w == -* ]]; then
      ${fn}_valued "$p"
      if [[ $w != *=* ]] && (( \${reply[(Ie)$w]} )); then
        (( i++ ))
        (( i == CURRENT )) && prev=$w
      fi
      continue
    fi
    ${fn}_subs "$p"
    for s in "\${reply[@]}"; do
      if [[ \${s%%:*} == "$w" ]]; then p=\${p:+$p }$w; break; fi
    done
  done
  if [[ -n $prev ]]; then
    ${fn}_value "$p" "$prev"
    if [[ \${reply[1]} == @files ]]; then _files; else compadd -a reply; fi
    return
  fi
  if [[ $PREFIX == -* ]]; then
    ${fn}_flags "$p"
    _describe -t options option reply
    return
  fi
  ${fn}_subs "$p"
  if (( \${#reply} )); then _describe -t commands command reply; return; fi
  ${fn}_args "$p"
  if (( \${#reply} )); then compadd -a reply; else _files; fi
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${name}
fi
`;
}

function fishScript(name: string, tree: PathNode[]): string {
  const fn = `__${name.replace(/\W/g, '_')}`;
  const sw = (list: (n: PathNode) => string[]) =>
    tree
      .map((n) => [n.path, list(n)] as const)
      .filter(([, items]) => items.length > 0)
      .map(
        ([path, items]) => `        case ${fq(path)}\n            printf '%s\\n' ${items.map(fq).join(' ')}`,
      )
      .join('\n');
  const lines: string[] = [];
  for (const n of tree) {
    const at = `-n ${fq(`${fn}_at ${fq(n.path)}`)}`;
    for (const s of n.subs) lines.push(`complete -c ${name} ${at} -a ${fq(s.name)} -d ${fq(s.summary)}`);
    for (const f of n.flags) {
      const names = f.names
        .map((x) => (x.startsWith('--') ? `-l ${fq(x.slice(2))}` : `-s ${fq(x.slice(1))}`))
        .join(' ');
      const value = !f.takesValue
        ? ''
        : f.choices.length
          ? ` -x -a ${fq(f.choices.join(' '))}`
          : f.files
            ? ' -r -F'
            : ' -x';
      lines.push(`complete -c ${name} ${at} ${names}${value} -d ${fq(f.summary)}`);
    }
    if (n.args.length) lines.push(`complete -c ${name} ${at} -a ${fq(n.args.join(' '))}`);
    else if (n.takesArgs && !n.subs.length) lines.push(`complete -c ${name} ${at} -F`);
  }
  return `${header('fish', name, `Load it with: ${name} completion fish | source; install it: ${name} completion fish > ~/.config/fish/completions/${name}.fish`)}
function ${fn}_subs --argument-names p
    switch "$p"
${sw((n) => n.subs.map((s) => s.name))}
    end
end
function ${fn}_valued --argument-names p
    switch "$p"
${sw(valued)}
    end
end
function ${fn}_path
    set -l p ''
    set -l skip 0
    for w in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $w
            if not string match -q -- '*=*' $w; and contains -- $w (${fn}_valued "$p")
                set skip 1
            end
            continue
        end
        if contains -- $w (${fn}_subs "$p")
            set p (string trim -- "$p $w")
        end
    end
    echo $p
end
function ${fn}_at --argument-names want
    set -l p (${fn}_path)
    test "$p" = "$want"
end
complete -c ${name} -f
${lines.join('\n')}
`;
}
