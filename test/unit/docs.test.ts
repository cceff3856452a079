// The documentation cannot drift: the command table is the one the command definitions render
// (scripts/docs.mjs, `npm run docs`), every relative link in README.md and docs/ reaches a file (and
// a heading, when it names one), and every example a docs page shows is a command a test runs.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/cli.js';

const PAGES = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((n) => n.endsWith('.md'))
    .map((n) => `docs/${n}`),
];

/** The pages issue 25 asks for, one per area; each shows examples taken from tests. */
const AREAS = [
  'local-stack',
  'deploy',
  'canary',
  'incidents',
  'troubleshooting',
  'failover',
  'maintenance',
  'monitoring',
  'witness',
  'security',
  'performance',
  'reliability',
];

function checkDocs(file?: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts/docs.mjs'), '--check', ...(file ? [file] : [])],
      { cwd: ROOT, timeout: 20_000 },
      (err, _stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }),
    );
  });
}

/** Markdown outside fenced code blocks and code spans, where a link is a link. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of text.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const base = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

describe('docs', () => {
  it('docs/commands.md is the table the command definitions render', async () => {
    const r = await checkDocs();
    // On failure the message is the checker's: which line differs, and `npm run docs` to regenerate.
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('a stale table is refused, saying how to regenerate it', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const stale = path.join(dir, 'commands.md');
      const lines = readFileSync(path.join(ROOT, 'docs/commands.md'), 'utf8').split('\n');
      const row = lines.findIndex((l) => l.startsWith('| [`ifmesh up`]'));
      expect(row).toBeGreaterThan(0);
      writeFileSync(stale, lines.filter((_, i) => i !== row).join('\n'));
      const r = await checkDocs(stale);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('run `npm run docs` to regenerate it');
      expect(r.stderr).toContain('ifmesh up');
    } finally {
      cleanup();
    }
  });

  it('every relative link in README.md and docs/ points to an existing file and heading', () => {
    let links = 0;
    for (const page of PAGES) {
      const text = readFileSync(path.join(ROOT, page), 'utf8');
      for (const m of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/i.test(target)) continue;
        links++;
        const [file, anchor] = target.split('#') as [string, string | undefined];
        const resolved = file ? path.join(path.dirname(path.join(ROOT, page)), file) : path.join(ROOT, page);
        expect(existsSync(resolved), `${page}: ${target} (no such file)`).toBe(true);
        if (anchor && resolved.endsWith('.md'))
          expect(
            [...anchors(readFileSync(resolved, 'utf8'))],
            `${page}: ${target} (no such heading)`,
          ).toContain(anchor);
      }
    }
    expect(links).toBeGreaterThan(AREAS.length);
  });

  it('every area has its page, linked from the README', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const area of AREAS) {
      expect(existsSync(path.join(ROOT, `docs/${area}.md`)), `docs/${area}.md`).toBe(true);
      expect(readme, `README links docs/${area}.md`).toContain(`](docs/${area}.md)`);
    }
  });

  it("every example block names the test it comes from, and that test runs the example's command and flags", () => {
    const perArea = new Map<string, number>();
    for (const page of PAGES.filter((p) => p.startsWith('docs/'))) {
      const text = readFileSync(path.join(ROOT, page), 'utf8');
      for (const m of text.matchAll(/<!-- from (\S+) -->\n```sh\n([\s\S]*?)```/g)) {
        const source = m[1]!;
        expect(existsSync(path.join(ROOT, source)), `${page}: ${source} does not exist`).toBe(true);
        const test = readFileSync(path.join(ROOT, source), 'utf8');
        // A token the test passes: quoted on its own, or a word of a quoted flag string.
        const passes = (token: string) =>
          new RegExp(`['"\`\\s]${token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"\`\\s]`).test(test);
        for (const line of m[2]!.split('\n')) {
          const words = line
            .replace(/\s+#.*$/, '')
            .trim()
            .split(/\s+/);
          const at = words.indexOf('ifmesh');
          if (at < 0) continue;
          const [command, sub] = words.slice(at + 1);
          const checked = [command!, ...(sub && /^[a-z-]+$/.test(sub) ? [sub] : [])];
          const flags = words.slice(at + 1).filter((w) => /^--?[a-z]/.test(w) && w !== '--');
          for (const token of [...checked, ...flags.map((f) => f.split('=')[0]!)])
            expect(passes(token), `${page}: "${line}" — ${source} never passes ${token}`).toBe(true);
          perArea.set(page, (perArea.get(page) ?? 0) + 1);
        }
      }
    }
    for (const area of AREAS)
      expect(perArea.get(`docs/${area}.md`), `docs/${area}.md has no example`).toBeGreaterThan(0);
  });
});
