import { describe, expect, it } from 'vitest';
import { type LogSource, selectLogSources } from '../../src/ops/fleet/logs.js';

const all: LogSource[] = [
  'deploy-agent-agent-1',
  'deploy-signaling-1',
  'deploy-signaling-2',
  'staging-signaling-1',
  'signaling-10',
  'witness',
].map((name) => ({ name, file: `/state/logs/${name}.log` }));
const names = (n: string) => selectLogSources(all, n).map((s) => s.name);

describe('ifmesh logs NAME', () => {
  it('takes the exact name first, else every process whose name ends in -NAME', () => {
    expect(names('witness')).toEqual(['witness']);
    expect(names('signaling-10')).toEqual(['signaling-10']);
    expect(names('signaling-1')).toEqual(['deploy-signaling-1', 'staging-signaling-1']);
    expect(names('agent-1')).toEqual(['deploy-agent-agent-1']);
    expect(names('deploy-signaling-2')).toEqual(['deploy-signaling-2']);
    expect(names('signaling-3')).toEqual([]);
    expect(names('ignaling-1')).toEqual([]);
  });
});
