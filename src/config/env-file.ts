import type { ConfigIssue } from '../errors.js';

export interface EnvEntry {
  key: string;
  value: string;
  line: number;
}

export interface ParsedEnvFile {
  entries: Map<string, EnvEntry>;
  issues: ConfigIssue[];
}

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses the subset of shell syntax that the runbook's `source config/webrtc-production.env` relies
 * on: KEY=VALUE, optional `export`, single or double quotes, and `# comments` after whitespace.
 * Issues never quote a line's text, since any line may hold a secret.
 */
export function parseEnvFile(text: string, file: string): ParsedEnvFile {
  const entries = new Map<string, EnvEntry>();
  const issues: ConfigIssue[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const body = trimmed.startsWith('export ') ? trimmed.slice(7).trimStart() : trimmed;
    const eq = body.indexOf('=');
    const key = eq > 0 ? body.slice(0, eq) : '';
    if (eq <= 0 || !KEY.test(key)) {
      issues.push({
        file,
        line,
        key: undefined,
        message: 'line is not KEY=VALUE',
        fix: 'write it as KEY=VALUE (no spaces around =) or comment it out with #',
      });
      return;
    }
    const parsed = parseValue(body.slice(eq + 1));
    if ('error' in parsed) {
      issues.push({ file, line, key, message: parsed.error, fix: parsed.fix });
      return;
    }
    const previous = entries.get(key);
    if (previous) {
      issues.push({
        file,
        line,
        key,
        message: `is set twice (first on line ${previous.line})`,
        fix: 'keep one of the two lines',
      });
      return;
    }
    entries.set(key, { key, value: parsed.value, line });
  });
  return { entries, issues };
}

type ValueResult = { value: string } | { error: string; fix: string };

function parseValue(rest: string): ValueResult {
  const quote = rest[0];
  if (quote === '"' || quote === "'") {
    let value = '';
    let i = 1;
    for (; i < rest.length; i++) {
      const ch = rest[i]!;
      if (ch === quote) break;
      if (quote === '"' && ch === '\\' && i + 1 < rest.length) {
        const next = rest[i + 1]!;
        value += next === 'n' ? '\n' : next;
        i++;
        continue;
      }
      value += ch;
    }
    if (i >= rest.length) {
      return {
        error: `has an unterminated ${quote === '"' ? 'double' : 'single'} quote`,
        fix: `close the quote with ${quote}`,
      };
    }
    const after = rest.slice(i + 1).trim();
    if (after !== '' && !after.startsWith('#')) {
      return { error: 'has text after the closing quote', fix: 'put the whole value inside the quotes' };
    }
    return { value };
  }
  // Unquoted: a # after whitespace starts a comment, as in the shell.
  const comment = rest.search(/\s#/);
  const value = (comment >= 0 ? rest.slice(0, comment) : rest).trim();
  if (/\s/.test(value)) {
    return { error: 'has an unquoted value with spaces', fix: 'wrap the value in double quotes' };
  }
  return { value };
}
