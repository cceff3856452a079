import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ephemeralRange, freePort, freePortRange, planningWindow } from '../../src/ops/stack/stack.js';

const [ephemeralLow] = ephemeralRange();

describe('freePort (ports `up` plans and binds seconds later)', () => {
  it('plans below the kernel ephemeral range, and each port binds', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    for (const p of ports) expect(p).toBeLessThan(ephemeralLow);
  });

  it('never hands out a port twice, even when the random draw repeats', async () => {
    const draws = [0.5, 0.5, 0.25];
    const seq = () => draws.shift() ?? Math.random();
    const a = await freePortRange(2, seq);
    const b = await freePortRange(2, seq);
    expect(b).not.toBe(a);
    expect(Math.abs(a - b)).toBeGreaterThanOrEqual(2);
  });

  it('reads the range, and plans above it, or anywhere, when there is no room below', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ifmesh-ports-'));
    try {
      const f = path.join(dir, 'range');
      writeFileSync(f, '1024\t65000\n');
      expect(ephemeralRange(f)).toEqual([1024, 65000]);
      writeFileSync(f, 'garbage');
      expect(ephemeralRange(f)).toEqual([32768, 60999]);
      expect(ephemeralRange(path.join(dir, 'missing'))).toEqual([32768, 60999]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(planningWindow([32768, 60999], 3)).toEqual([20000, 32765]);
    expect(planningWindow([10000, 40000], 1)).toEqual([40001, 65535]);
    expect(planningWindow([1024, 65000], 2)).toEqual([1024, 65534]);
  });
});
