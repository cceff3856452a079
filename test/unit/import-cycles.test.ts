// The CLI's modules form no import circle (issue 25): the registry lazy-imports the command groups,
// and no command imports the registry (or anything that leads back to it). Every kind of import
// counts: `import`, `import type`, `export … from` and `import()`, because each is a dependency a
// reader follows. Also: the definitions (commands/<group>/*.ts) import their ops with `import()`, so
// the list of every definition loads no heavy module (werift, ink, SQLite…).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

type Kind = 'static' | 'type' | 'dynamic';
interface Edge {
  to: string;
  kind: Kind;
}

const SPEC =
  /\b(import\s+type\b[^'";]*?from\s*|import\s*\(\s*|import\s+(?!type\b)[^'";]*?from\s*|import\s*|export\s+(?:type\s+)?[^'";]*?from\s*)['"]([^'"]+)['"]/g;

function kindOf(head: string): Kind {
  if (/^import\s*\(/.test(head)) return 'dynamic';
  if (/^(import|export)\s+type\b/.test(head)) return 'type';
  return 'static';
}

/** The imports of one file: repository-relative paths of project files, or bare package names. */
function importsOf(file: string): Edge[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8').replace(/^\s*\/\/.*$/gm, '');
  const edges: Edge[] = [];
  for (const m of text.matchAll(SPEC)) {
    const spec = m[2]!;
    const kind = kindOf(m[1]!);
    if (!spec.startsWith('.')) {
      edges.push({ to: spec, kind });
      continue;
    }
    const base = path.join(path.dirname(file), spec).replace(/\.js$/, '');
    const hit = ['.ts', '.tsx', '/index.ts']
      .map((ext) => base + ext)
      .find((f) => existsSync(path.join(ROOT, f)));
    if (hit) edges.push({ to: hit, kind });
  }
  return edges;
}

function filesUnder(dir: string): string[] {
  const abs = path.join(ROOT, dir);
  return readdirSync(abs).flatMap((name) => {
    const rel = path.join(dir, name);
    if (statSync(path.join(ROOT, rel)).isDirectory()) return filesUnder(rel);
    return /\.tsx?$/.test(name) ? [rel] : [];
  });
}

/** Every cycle's first appearance in a depth-first walk, as the files around it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const next of graph.get(n) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

describe('import graph of commands/ and src/cli/', () => {
  const files = [...filesUnder('commands'), ...filesUnder('src/cli')];
  const inside = new Set(files);

  it('has no cycle (every kind of import counts)', () => {
    const graph = new Map(
      files.map(
        (f) =>
          [
            f,
            importsOf(f)
              .map((e) => e.to)
              .filter((t) => inside.has(t)),
          ] as const,
      ),
    );
    const found = cycles(graph).map((c) => c.join(' -> '));
    expect(
      found,
      'import cycles (break them: definitions import src/cli/define.ts, never the registry)',
    ).toEqual([]);
  });

  it('finds a cycle when there is one (the walker itself)', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(g).map((c) => c.join(' -> '))).toEqual(['a -> b -> c -> a']);
  });

  it('no command definition imports the registry', () => {
    for (const f of files.filter((x) => x.startsWith('commands/')))
      expect(
        importsOf(f).map((e) => e.to),
        f,
      ).not.toContain('src/cli/registry.ts');
  });

  const HEAVY = ['werift', 'ink', 'react', 'better-sqlite3', 'undici', 'ws', 'pg', 'ioredis', 'nodemailer'];
  /** The chains of static imports from `start` that reach a heavy module. */
  const heavyFrom = (start: string) => {
    const seen = new Set<string>();
    const reached: string[] = [];
    const walk = (file: string, via: string[]) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const e of importsOf(file)) {
        if (e.kind !== 'static') continue;
        if (HEAVY.includes(e.to)) reached.push([...via, file, e.to].join(' -> '));
        else if (e.to.includes('/') && existsSync(path.join(ROOT, e.to))) walk(e.to, [...via, file]);
      }
    };
    walk(start, []);
    return reached;
  };

  it('the list of every definition loads no heavy module (ops come in through import())', () => {
    expect(heavyFrom('src/cli/definitions.ts')).toEqual([]);
  });

  it('the CLI starts without a heavy module (`ifmesh --help` took 2.6× `node -e 0` while undici loaded)', () => {
    expect(heavyFrom('bin/ifmesh.ts')).toEqual([]);
  });
});
