// How `ifmesh load` shares a run among processes: every pair driven exactly once, by the process
// holding its lower-numbered agent, and the shares' pair counts close to even.
import { describe, expect, it } from 'vitest';
import { ownPairs, percentiles, splitAgents } from '../../src/ops/agent/load.js';
import { splitPairs } from '../../src/ops/agent/signaling-load.js';

describe('splitAgents / ownPairs', () => {
  it('covers every pair exactly once for any split', () => {
    for (const agents of [2, 3, 7, 20, 41])
      for (const processes of [1, 2, 3, 5].filter((p) => p <= agents)) {
        const ids = Array.from({ length: agents }, (_, i) => `a${i}`);
        const ranges = splitAgents(agents, processes);
        expect(ranges).toHaveLength(processes);
        expect(ranges[0]![0]).toBe(0);
        expect(ranges.at(-1)![1]).toBe(agents);
        const seen = ranges.flatMap(([from, to]) => ownPairs({ ids, from, to }).map(([a, b]) => `${a}-${b}`));
        expect(new Set(seen).size).toBe(seen.length);
        expect(seen.length).toBe((agents * (agents - 1)) / 2);
      }
  });

  it('gives each of 4 processes of 40 agents about a quarter of the 780 pairs', () => {
    const ids = Array.from({ length: 40 }, (_, i) => `a${i}`);
    const counts = splitAgents(40, 4).map(([from, to]) => ownPairs({ ids, from, to }).length);
    for (const c of counts) expect(Math.abs(c - 195)).toBeLessThanOrEqual(39);
  });
});

describe('splitPairs (--signaling-only)', () => {
  it('gives every agent to one process, never splitting a relay pair (2k, 2k+1), shares within one pair', () => {
    for (const agents of [2, 3, 12, 41, 10_000])
      for (const processes of [1, 2, 3, 4].filter((p) => p <= agents / 2)) {
        const ranges = splitPairs(agents, processes);
        expect(ranges).toHaveLength(processes);
        expect(ranges[0]![0]).toBe(0);
        expect(ranges.at(-1)![1]).toBe(agents);
        for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBe(ranges[i - 1]![1]);
        for (const [from] of ranges) expect(from % 2).toBe(0);
        const pairs = ranges.map(([from, to]) => Math.floor((to - from) / 2));
        expect(Math.max(...pairs) - Math.min(...pairs)).toBeLessThanOrEqual(1);
      }
    expect(splitPairs(10_000, 4)).toEqual([
      [0, 2500],
      [2500, 5000],
      [5000, 7500],
      [7500, 10_000],
    ]);
  });
});

describe('percentiles', () => {
  it('reads p50/p95/p99/max from unsorted values, null when empty', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentiles(v)).toEqual({ p50: 51, p95: 96, p99: 100, max: 100 });
    expect(percentiles([])).toEqual({ p50: null, p95: null, p99: null, max: null });
  });
});
