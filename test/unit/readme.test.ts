import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

describe('README first screen', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const lines = firstBlock.split('\n').filter((l) => l.trim() !== '');

  it('has exactly two command lines, the first before any other section', () => {
    expect(lines).toHaveLength(2);
    expect(readme.indexOf('```sh')).toBeLessThan(readme.indexOf('\n## '));
  });

  it('runs the test line verbatim in .ci/run', () => {
    const ci = readFileSync(path.join(ROOT, '.ci/run'), 'utf8').split('\n');
    expect(ci).toContain(lines[1]);
  });

  it('names only npm scripts that exist', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    for (const line of lines) {
      for (const m of line.matchAll(/npm run ([\w:-]+)/g)) expect(pkg.scripts).toHaveProperty(m[1]!);
    }
  });
});
