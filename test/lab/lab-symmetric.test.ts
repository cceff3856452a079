// Issue 26's failure, on real kernel NAT: two `ifmesh agent run` processes, each behind its own
// symmetric NAT (masquerade fully-random), ICE policy all. They connect through TURN at once,
// without waiting for the relay fallback (before the fix, coturn tore down both allocations and the
// pair stayed closed). The full matrix is test/lab/nat-matrix.test.ts (full tier).
import { afterAll, describe, expect, it } from 'vitest';
import { labDown } from '../../src/ops/lab/lab.js';
import { runPair } from '../../src/ops/lab/matrix.js';
import { labFixture } from '../helpers/lab.js';

const lab = labFixture('s');

describe('agents behind symmetric NATs', () => {
  afterAll(async () => {
    await labDown({ name: lab.name }, lab.ctx).catch(() => {});
    lab.cleanup();
  });

  it('connect with policy all through a relay, without the fallback', async () => {
    const r = await runPair({
      name: lab.name,
      nats: ['symmetric', 'symmetric'],
      policy: 'all',
      ctx: lab.ctx,
    });
    expect(r, JSON.stringify(r)).toMatchObject({ connected: true, fallback: false });
    expect(r.candidate_types).toContain('relay');
    // The time is reported (npm run lab), not asserted: only that the witness recorded the open.
    expect(r.open_ms).not.toBeNull();
    // A NATed end is never reported as host: its path is the relay or the NAT's own mapping.
    expect(r.candidate_types.every((t) => t === 'relay' || t === 'prflx' || t === 'srflx')).toBe(true);
  }, 120_000);
});
