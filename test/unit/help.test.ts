// What --help promises: every runnable command shows an example of itself, and the exit codes are
// one table (src/errors.ts) that `ifmesh help exit-codes`, `ifmesh --help` and README all show.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { renderExitCodesMarkdown } from '../../src/cli/help.js';
import { type CommandIo, commands } from '../../src/cli/registry.js';
import { ExitCode, exitCodeTable } from '../../src/errors.js';
import { CANARY_EXIT } from '../../src/ops/rollout/canary-state.js';
import { ROOT, run } from '../helpers/cli.js';

/** Every leaf of the command tree ("up", "witness query", …): each module registered on its own. */
async function leaves(): Promise<string[]> {
  const found: string[] = [];
  const walk = (cmd: Command, p: string) => {
    if (cmd.commands.length === 0) found.push(p);
    for (const sub of cmd.commands) walk(sub, `${p} ${sub.name()}`);
  };
  for (const entry of commands) {
    const cmd = new Command(entry.name);
    (await entry.load()).register(cmd, {} as CommandIo);
    walk(cmd, entry.name);
  }
  return found;
}

describe('--help', () => {
  it('every leaf command shows at least one example that runs it', async () => {
    const all = await leaves();
    expect(all.length).toBeGreaterThan(60);
    const without: string[] = [];
    for (const leaf of all) {
      const r = await run([...leaf.split(' '), '--help']);
      expect(r.code, `${leaf} --help`).toBe(0);
      const examples = r.stdout.split('\nExamples:\n')[1] ?? '';
      if (!examples.split('\n').some((l) => l.startsWith('  $ ') && l.includes(`ifmesh ${leaf}`)))
        without.push(leaf);
    }
    expect(without, 'leaf commands whose --help has no example (add one to its definition)').toEqual([]);
    // Sixty --help runs in one test: a bound for a loaded machine, not a speed assertion.
  }, 30_000);

  it("a sub-command's help shows its own examples only; its group's shows them all", async () => {
    const sub = await run(['canary', 'status', '--help']);
    expect(sub.stdout).toContain('$ ifmesh canary status --watch --timeout 10m');
    expect(sub.stdout).not.toContain('$ ifmesh canary abort');
    const group = await run(['canary', '--help']);
    expect(group.stdout).toContain('$ ifmesh canary status --watch');
    expect(group.stdout).toContain('$ ifmesh canary abort');
  });
});

describe('exit codes', () => {
  const codes = Object.values(ExitCode);

  it('canary status answers only with codes of ExitCode', () => {
    for (const code of Object.values(CANARY_EXIT)) expect(codes).toContain(code);
    expect(codes).toEqual(expect.arrayContaining([5, 6, 7, 8, 75]));
  });

  it('`ifmesh help exit-codes` lists every code with its meaning, and --json the same table', async () => {
    const r = await run(['help', 'exit-codes']);
    expect(r.code).toBe(0);
    for (const row of exitCodeTable())
      expect(r.stdout).toContain(`\n  ${String(row.code).padEnd(4)} ${row.meaning.replaceAll('`', "'")}\n`);
    const j = await run(['help', 'exit-codes', '--json']);
    expect(JSON.parse(j.stdout).exit_codes.map((x: { code: number }) => x.code)).toEqual(
      [...codes].sort((a, b) => a - b),
    );
  });

  it('`ifmesh --help` names every code', async () => {
    const r = await run(['--help']);
    const footer = /Exit codes: (.*)/.exec(r.stdout)?.[1] ?? '';
    for (const row of exitCodeTable()) expect(footer).toContain(`${row.code} ${row.short}`);
  });

  it("README's table is the generated one", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const table = /<!-- exit-codes:table[^>]*-->\n([\s\S]*?)\n<!-- \/exit-codes:table -->/.exec(readme)?.[1];
    expect(table, 'README: paste renderExitCodesMarkdown() between the exit-codes:table markers').toBe(
      renderExitCodesMarkdown(),
    );
  });
});
