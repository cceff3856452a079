// The NAT traversal matrix (docs/nat-traversal.md): every pair of NAT types (none, cone, symmetric)
// × ICE policy (all, relay), each in a lab of its own with two real agents. What must hold: every
// pair connects; with policy all a pair without a symmetric side connects without a relay on either
// end; a symmetric NAT facing another NAT goes through TURN, and one facing a public host does not
// (the public end answers the NAT's new mapping directly: its checks arrive as a peer-reflexive
// candidate, and nothing filters them). Times are reported, never asserted (npm run lab prints and
// publishes them).
import { afterAll, describe, expect, it } from 'vitest';
import { labDown } from '../../src/ops/lab/lab.js';
import { NAT_PAIRS, type PairResult, renderMatrix, runPair } from '../../src/ops/lab/matrix.js';
import { labFixture } from '../helpers/lab.js';

const lab = labFixture('m');
const rows: PairResult[] = [];

describe('NAT traversal matrix', () => {
  afterAll(async () => {
    await labDown({ name: lab.name }, lab.ctx).catch(() => {});
    lab.cleanup();
    console.log(`\n${renderMatrix(rows)}\n`);
  });

  for (const policy of ['all', 'relay'] as const)
    for (const nats of NAT_PAIRS)
      it(`${nats.join(' ↔ ')}, policy ${policy}`, async () => {
        const r = await runPair({ name: lab.name, nats, policy, ctx: lab.ctx });
        rows.push(r);
        expect(r.connected, JSON.stringify(r)).toBe(true);
        expect(r.open_ms).not.toBeNull();
        const relayed = nats.includes('symmetric') && !nats.includes('none');
        if (policy === 'relay') expect(r.candidate_types).toEqual(['relay', 'relay']);
        else if (relayed) expect(r.candidate_types).toContain('relay');
        else expect(r.candidate_types).not.toContain('relay');
        // A NATed end never reports host; a public end on a direct path does.
        nats.forEach((nat, i) => {
          if (nat !== 'none') expect(r.candidate_types[i]).not.toBe('host');
        });
      }, 120_000);
});
