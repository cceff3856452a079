import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The benchmarks run compiled (dist/test/bench/), like the ifmesh code they measure: the repository
// root is the nearest directory above holding package.json.
function repositoryRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('bench: no package.json above the benchmark files');
    dir = up;
  }
  return dir;
}

export const ROOT = repositoryRoot();

/** A compiled benchmark helper script (test/bench/NAME.ts built to dist/test/bench/NAME.js). */
export function benchScript(name: string): string {
  return path.join(ROOT, 'dist/test/bench', `${name}.js`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Wall time of a whole process, in ms. */
export function timeProcess(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, stdio: 'ignore', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Runs fn repeatedly for about `ms` and returns operations per second. */
export function opsPerSecond(fn: () => void, ms = 1000): number {
  for (let i = 0; i < 50; i++) fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

/**
 * Operations per second of a baseline and of ifmesh doing the same work, measured in alternating
 * rounds so that a noisy neighbour slows both alike; the median round of each.
 */
export function compareOpsPerSecond(
  baseline: () => void,
  ours: () => void,
  rounds = 7,
  ms = 300,
): { baseline: number; ours: number } {
  const b: number[] = [];
  const o: number[] = [];
  for (let i = 0; i < rounds; i++) {
    b.push(opsPerSecond(baseline, ms));
    o.push(opsPerSecond(ours, ms));
  }
  return { baseline: median(b), ours: median(o) };
}

export interface Row {
  measure: string;
  baseline: string;
  ifmesh: string;
  ratio: string;
  target: string;
  /** Whether the row meets its target; absent when it has none. `npm run bench` fails on false. */
  met?: boolean;
}

export function table(rows: Row[]): string {
  const head = '| measure | baseline (same run) | ifmesh | ratio | target |\n|---|---|---|---|---|';
  return [
    head,
    ...rows.map(
      (r) =>
        `| ${r.measure} | ${r.baseline} | ${r.ifmesh} | ${r.ratio} | ${r.target}${r.met === false ? ' **missed**' : ''} |`,
    ),
  ].join('\n');
}

/** One line per row of `suite` that missed its target, for the runner to print before exiting 1. */
export function missedTargets(suite: string, rows: Row[]): string[] {
  return rows
    .filter((r) => r.met === false)
    .map((r) => `${suite}: ${r.measure}: ${r.ratio} (target ${r.target})`);
}

/** Replaces the block between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in docs/performance.md. */
export function writeReadmeBlock(name: string, body: string): void {
  const file = path.join(ROOT, 'docs/performance.md');
  const text = readFileSync(file, 'utf8');
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`docs/performance.md has no ${start} … ${end} block`);
  writeFileSync(file, `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`);
}
