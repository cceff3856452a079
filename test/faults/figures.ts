// What a fault scenario measured, for the table `npm run faults` prints and writes into
// docs/reliability.md (scripts/faults.mjs). A scenario records its figure before it asserts, so
// a failed expectation still shows what was observed. Outside `npm run faults` (no
// IFMESH_FAULT_FIGURES) recording is a no-op and the scenario's assertions decide alone.
import { appendFileSync } from 'node:fs';
import path from 'node:path';

export interface Figure {
  /** The fault injected, as a reader of the table would name it. */
  fault: string;
  /** How many times it was injected (cycles, random trials, generated inputs). */
  trials: number;
  /** What must happen, in the table's words. */
  expected: string;
  /** What happened, in the same terms. */
  observed: string;
  /** The number the row is about (a rate, a loss count, a time), already rounded for people. */
  figure: string;
  /** Whether observed meets expected. */
  ok: boolean;
}

/** The file figures are appended to: one JSON line each, appended in one write (O_APPEND). */
export const FIGURES_FILE = 'figures.ndjson';

export function recordFigure(f: Figure): void {
  const dir = process.env.IFMESH_FAULT_FIGURES;
  if (!dir) return;
  appendFileSync(path.join(dir, FIGURES_FILE), `${JSON.stringify(f)}\n`);
}

/** "12 of 12", "0 of 500": a count out of trials. */
export const outOf = (n: number, trials: number): string => `${n} of ${trials}`;

/** A share as a percentage with at most one decimal: 100 %, 99.5 %. */
export function percent(n: number, trials: number): string {
  if (trials === 0) return 'n/a';
  const p = Math.round((1000 * n) / trials) / 10;
  return `${p} %`;
}

/**
 * Runs a scenario whose proof is a sequence of assertions, and records its row either way: what
 * `body` returns when every assertion held, or the first line of the assertion that failed.
 */
export async function withFigure(
  row: Pick<Figure, 'fault' | 'trials' | 'expected'>,
  body: () => Promise<Pick<Figure, 'observed' | 'figure'>>,
): Promise<void> {
  try {
    recordFigure({ ...row, ...(await body()), ok: true });
  } catch (e) {
    const first = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 160);
    recordFigure({ ...row, observed: `failed: ${first}`, figure: 'failed', ok: false });
    throw e;
  }
}
