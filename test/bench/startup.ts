import path from 'node:path';
import { median, ROOT, type Row, timeProcess } from './lib.js';

/** `ifmesh --help` against `node -e 0`, interleaved so that machine noise hits both alike. */
export function benchStartup(runs = 21): Row[] {
  const bin = path.join(ROOT, 'dist/bin/ifmesh.js');
  const env = { ...process.env, NO_COLOR: '1' };
  const base: number[] = [];
  const help: number[] = [];
  const selftest: number[] = [];
  for (let i = 0; i < runs; i++) {
    base.push(timeProcess(['-e', '0'], env));
    help.push(timeProcess([bin, '--help'], env));
    selftest.push(
      timeProcess(
        [bin, 'config', 'check', '--config', path.join(ROOT, 'fixtures/config/development.env')],
        env,
      ),
    );
  }
  const b = median(base);
  const helpRatio = median(help) / b;
  return [
    {
      measure: '`ifmesh --help` start-up, median of 21',
      baseline: `\`node -e 0\` ${b.toFixed(0)} ms`,
      ifmesh: `${median(help).toFixed(0)} ms`,
      ratio: `${helpRatio.toFixed(2)}×`,
      target: '≤ 2×',
      met: helpRatio <= 2,
    },
    {
      measure: '`ifmesh config check` (dev fixture), median of 21',
      baseline: `\`node -e 0\` ${b.toFixed(0)} ms`,
      ifmesh: `${median(selftest).toFixed(0)} ms`,
      ratio: `${(median(selftest) / b).toFixed(2)}×`,
      target: '—',
    },
  ];
}
