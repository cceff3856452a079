import { describe, expect, it } from 'vitest';
import { missedTargets, type Row, table } from '../bench/lib.js';

const rows: Row[] = [
  { measure: 'fast path', baseline: 'raw 10/s', ifmesh: '9/s', ratio: '0.90×', target: '≥ 0.8×', met: true },
  { measure: 'slow path', baseline: 'raw 10/s', ifmesh: '2/s', ratio: '0.20×', target: '≥ 0.5×', met: false },
  { measure: 'no target', baseline: '—', ifmesh: '5 ms', ratio: '—', target: '—' },
];

describe('benchmark tables', () => {
  it('marks a row that missed its target in the README table', () => {
    const lines = table(rows).split('\n');
    expect(lines[2]).toBe('| fast path | raw 10/s | 9/s | 0.90× | ≥ 0.8× |');
    expect(lines[3]).toBe('| slow path | raw 10/s | 2/s | 0.20× | ≥ 0.5× **missed** |');
    expect(lines[4]).toBe('| no target | — | 5 ms | — | — |');
  });

  it('lists exactly the rows that missed, for npm run bench to exit 1 on', () => {
    expect(missedTargets('crypto', rows)).toEqual(['crypto: slow path: 0.20× (target ≥ 0.5×)']);
    expect(missedTargets('crypto', [rows[0]!, rows[2]!])).toEqual([]);
  });
});
