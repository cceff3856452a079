// `ifmesh completion bash|zsh|fish`, loaded into the real shells: bash through its completion
// function (COMP_WORDS/COMP_CWORD, as readline calls it), zsh through a pseudo-terminal (zpty) where
// Tab is pressed after compinit, fish through `complete -C` (what fish runs on Tab).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, tempDir } from '../helpers/cli.js';

let dir: string;
let cleanup: () => void;
const scripts: Record<string, string> = {};
beforeAll(async () => {
  ({ dir, cleanup } = tempDir());
  const shells = ['bash', 'zsh', 'fish'];
  const made = await Promise.all(shells.map((s) => spawnCli(['completion', s], { timeoutMs: 25_000 })));
  shells.forEach((shell, i) => {
    const r = made[i]!;
    if (r.code !== 0) throw new Error(`ifmesh completion ${shell} exited ${r.code}: ${r.stderr}`);
    scripts[shell] = path.join(dir, `ifmesh.${shell}`);
    writeFileSync(scripts[shell]!, r.stdout);
  });
  writeFileSync(path.join(dir, 'cert.pem'), '');
});
afterAll(() => cleanup());

const sh = (bin: string, args: string[], cwd = dir) =>
  execFileSync(bin, args, {
    cwd,
    timeout: 20_000,
    env: { PATH: process.env.PATH ?? '', HOME: dir },
  }).toString();

/** What bash offers for the words typed so far (the last one is completed). */
function bashComplete(...words: string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const out = sh(requireBinary('bash', 'bash'), [
    '--norc',
    '--noprofile',
    '-c',
    `source '${scripts.bash}'; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _ifmesh; printf '%s\\n' "\${COMPREPLY[@]}"`,
  ]);
  return out.split('\n').filter(Boolean);
}

/** What fish offers for a command line (`complete -C`), without descriptions. */
function fishComplete(line: string): string[] {
  const out = sh(requireBinary('fish', 'fish'), [
    '--no-config',
    '-c',
    `source '${scripts.fish}'; complete -C '${line}'`,
  ]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t')[0]!);
}

// Types `line` and Tab into an interactive zsh (compinit, then the script sourced) on a pty, and
// prints the screen once it shows `expect` (escape sequences removed), or exits 1 with what it saw.
const ZSH_DRIVER = String.raw`
zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "PS1='> '; autoload -U compinit; compinit -u -D; source ${'$'}{(q)1}; print READ''Y"
screen=''
until_shows() {
  local chunk i
  for i in {1..400}; do
    zpty -r -t z chunk && screen+=$chunk
    screen=${'$'}{screen//$'\e'\[[0-9;?]#[A-Za-z]/}
    [[ $screen == *"$1"* ]] && return 0
    sleep 0.025
  done
  print -r -- "$screen"
  return 1
}
until_shows READY || exit 1
screen=''
zpty -w -n z "$2"$'\t'
until_shows "$3" || exit 1
print -r -- "$screen"
zpty -d z
`;

function zshTab(line: string, expectShown: string): string {
  const driver = path.join(dir, 'drive.zsh');
  writeFileSync(driver, ZSH_DRIVER);
  return sh(requireBinary('zsh', 'zsh'), ['-f', driver, scripts.zsh!, line, expectShown]);
}

describe('ifmesh completion', () => {
  it('bash: completes commands, sub-commands, flags, flag values and arguments', () => {
    expect(bashComplete('ifmesh', 'can')).toEqual(['canary']);
    expect(bashComplete('ifmesh', 'canary', 'st')).toEqual(['status']);
    expect(bashComplete('ifmesh', 'canary', 'status', '--wa')).toEqual(['--watch']);
    expect(bashComplete('ifmesh', 'witness', '')).toEqual(
      expect.arrayContaining(['serve', 'query', 'tail', 'verify', 'migrate', 'spool', 'trust']),
    );
    // a flag's value is skipped when finding the command: --ca takes one, --json does not
    expect(bashComplete('ifmesh', '--ca', 'cert.pem', 'ke')).toEqual(['keys']);
    expect(bashComplete('ifmesh', 'up', '--json', '--ag')).toEqual(['--agents']);
    expect(bashComplete('ifmesh', 'deploy', '--supervisor', '')).toEqual(['ifmesh', 'systemd', 'none']);
    expect(bashComplete('ifmesh', 'deploy', '--agents-dir', 'cer')).toEqual(['cert.pem']);
    expect(bashComplete('ifmesh', 'completion', '')).toEqual(['bash', 'zsh', 'fish']);
    expect(bashComplete('ifmesh', 'help', 'exit')).toEqual(['exit-codes']);
    // global flags after a sub-command
    expect(bashComplete('ifmesh', 'status', '--c')).toContain('--ca');
  });

  it('bash: `complete` registers it for the ifmesh command', () => {
    const out = sh(requireBinary('bash', 'bash'), [
      '--norc',
      '-c',
      `source '${scripts.bash}'; complete -p ifmesh`,
    ]);
    expect(out.trim()).toBe('complete -F _ifmesh ifmesh');
  });

  it('zsh: the script parses, and Tab completes a sub-command and a flag value after compinit', () => {
    sh(requireBinary('zsh', 'zsh'), ['-n', scripts.zsh!]);
    expect(zshTab('ifmesh canary st', 'ifmesh canary status')).toContain('ifmesh canary status');
    expect(zshTab('ifmesh canary status --wa', 'status --watch')).toContain('ifmesh canary status --watch');
    const values = zshTab('ifmesh deploy --supervisor ', 'systemd');
    expect(values).toMatch(/ifmesh\s+none\s+systemd/);
  });

  it('fish: the script parses, and completes sub-commands, flags and values with descriptions', () => {
    sh(requireBinary('fish', 'fish'), ['--no-config', '-n', scripts.fish!]);
    expect(fishComplete('ifmesh can')).toEqual(['canary']);
    expect(fishComplete('ifmesh canary st')).toEqual(['status']);
    expect(fishComplete('ifmesh canary status --wa')).toEqual(['--watch']);
    expect(fishComplete('ifmesh --ca cert.pem ke')).toEqual(['keys']);
    expect(fishComplete('ifmesh deploy --supervisor ').sort()).toEqual(['ifmesh', 'none', 'systemd']);
    expect(fishComplete('ifmesh completion ').sort()).toEqual(['bash', 'fish', 'zsh']);
    const described = sh('fish', [
      '--no-config',
      '-c',
      `source '${scripts.fish}'; complete -C 'ifmesh selft'`,
    ]);
    expect(described).toMatch(/^selftest\tCheck this installation/);
  });

  it('refuses an unknown shell with exit 2, naming the choices', async () => {
    const r = await spawnCli(['completion', 'powershell']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "'powershell' is invalid for argument 'shell'. Allowed choices are bash, zsh, fish.",
    );
  });
});
