// Issue 26.4's second half, on real kernel NAT: with the relay-reach fix turned off (the agent's
// test hook IFMESH_TEST_NO_RELAY_REACH=1), two agents behind symmetric NATs with policy all fail
// their first attempt as before the fix, and the agent's own TURN fallback (relay-only after 5 s)
// and healing retries (a closed pair retried with backoff) still get them connected over a relay.
// The hook keeps the filter on the relay-only fallback attempts themselves: with it off there too,
// no fallback round connects (the relay-only offerer pairs its relay with the peer's private host
// and coturn drops the allocation) — the fallback cannot replace the fix, only back it up.
import { afterAll, describe, expect, it } from 'vitest';
import { labDown } from '../../src/ops/lab/lab.js';
import { runPair } from '../../src/ops/lab/matrix.js';
import { labFixture } from '../helpers/lab.js';

const lab = labFixture('h');

describe('agents behind symmetric NATs, relay-reach fix off', () => {
  afterAll(async () => {
    await labDown({ name: lab.name }, lab.ctx).catch(() => {});
    lab.cleanup();
  });

  it('connect through the TURN fallback / healing, over a relay', async () => {
    const r = await runPair({
      name: lab.name,
      nats: ['symmetric', 'symmetric'],
      policy: 'all',
      agentEnv: { IFMESH_TEST_NO_RELAY_REACH: '1' },
      connectTimeoutMs: 90_000,
      ctx: lab.ctx,
    });
    expect(r, JSON.stringify(r)).toMatchObject({ connected: true, fallback: true });
    expect(r.candidate_types).toContain('relay');
    expect(r.candidate_types.every((t) => t === 'relay' || t === 'prflx' || t === 'srflx')).toBe(true);
    // The direct attempt did not connect: the offerer went to TURN before the pair was established.
    expect(r.offerer_events.indexOf('turn_fallback_initiated')).toBeLessThan(
      r.offerer_events.lastIndexOf('p2p_connection_established'),
    );
  }, 150_000);
});
