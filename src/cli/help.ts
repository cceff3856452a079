// What `--help` says beyond commander's own text: each command's examples, and the exit codes (one
// table in src/errors.ts, rendered here for `ifmesh help exit-codes`, the footer of `ifmesh --help`
// and README's "Output and exit codes").
import { exitCodeTable } from '../errors.js';

export function examplesText(examples: readonly string[]): string {
  return examples.length ? `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n` : '';
}

/** `ifmesh --help`'s footer: every code in a few words. */
export function exitCodesFooter(): string {
  const codes = exitCodeTable()
    .map((r) => `${r.code} ${r.short}`)
    .join(', ');
  return `\nExit codes: ${codes} ('ifmesh help exit-codes' says more).\nRun 'ifmesh <command> --help' for a command's options and examples.\n`;
}

/** Exit codes that are not ifmesh's own. */
export const EXIT_CODE_NOTE = '`lab run` exits with the exit code of the command it ran.';

/** `ifmesh help exit-codes`. */
export function renderExitCodes(): string {
  const rows = exitCodeTable().map((r) => `  ${String(r.code).padEnd(4)} ${r.meaning.replaceAll('`', "'")}`);
  return `Exit codes of ifmesh (scripts may branch on them):\n\n${rows.join('\n')}\n\n${EXIT_CODE_NOTE.replaceAll('`', "'")}\n`;
}

/** README's table (test/unit/help.test.ts compares the two). */
export function renderExitCodesMarkdown(): string {
  const rows = exitCodeTable().map((r) => `| ${r.code} | ${r.meaning} |`);
  return ['| exit | meaning |', '| ---- | ------- |', ...rows, '', EXIT_CODE_NOTE].join('\n');
}
