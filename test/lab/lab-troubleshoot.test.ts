// Decision tree 1 on real NAT (issue 26.5): `ifmesh troubleshoot connection-timeout`, run inside a
// lab host with `ifmesh lab run`, so its STUN/TURN probes go through that host's NAT. h2's router
// drops every UDP packet to coturn (an nftables rule): from h2 the tree names the unreachable STUN/TURN
// server; the same pair seen from h1, whose path to coturn is open, does not.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity } from '../../src/crypto/key-file.js';
import { type LabState, labUp } from '../../src/ops/lab/lab.js';
import { startAgent } from '../../src/ops/lab/matrix.js';
import { waitFor } from '../../src/util/wait.js';
import { stateDir } from '../helpers/cli.js';
import { ifmeshInLab, labFixture, teardownLab } from '../helpers/lab.js';

const lab = labFixture('t');
const agents: ReturnType<typeof startAgent>[] = [];

async function tree1(state: LabState, host: string, agent: string, peer: string) {
  // The lab's signaling, witness, coturn and credentials come from `lab run` (labEnv).
  const { code, stdout, stderr } = await ifmeshInLab(lab, host, [
    'troubleshoot',
    'connection-timeout',
    agent,
    peer,
    '--signaling',
    `http://${state.plan.signaling.address}:${state.plan.signaling.port}`,
    '--state-dir',
    stateDir(state.dir, `ts-${host}`),
    '--json',
  ]);
  try {
    return {
      code,
      report: JSON.parse(stdout) as { walk: { root_cause: { id: string } | null; path: unknown[] } },
    };
  } catch {
    throw new Error(`troubleshoot in ${host} exited ${code}: ${stderr.slice(-1_000)}`);
  }
}

describe('tree 1 inside the lab', () => {
  afterAll(() => teardownLab(lab, agents));

  it('names the unreachable STUN/TURN server from the host whose NAT drops UDP to coturn', async () => {
    const up = await labUp(
      { name: lab.name, nats: ['symmetric', 'symmetric'], turnServers: 1, dryRun: false },
      lab.ctx,
    );
    if (up.dry_run) throw new Error('unreachable');
    const state = up.lab;
    const r2 = state.plan.hosts[1]!.router!.namespace;
    const coturn = state.plan.turn[0]!.addresses.join(', ');
    await lab.ctx.exec(
      'ip',
      [
        'netns',
        'exec',
        r2,
        'nft',
        `insert rule ip filter forward ip daddr { ${coturn} } meta l4proto udp drop`,
      ],
      { timeoutMs: 5_000 },
    );
    for (const id of ['a1', 'a2']) await loadOrCreateIdentity(path.join(state.dir, `${id}.key`), id);
    agents.push(startAgent(state, 0, 'all', 5_000));
    expect(await agents[0]!.ready, agents[0]!.output()).toBe(true);
    agents.push(startAgent(state, 1, 'all', 5_000));
    expect(await agents[1]!.ready, agents[1]!.output()).toBe(true);
    // The pair has tried (offer sent, direct and relay attempts) before the tree looks at it.
    expect(
      await waitFor(
        async () => (await tree1(state, 'h1', 'a1', 'a2')).report.walk.path.length >= 4,
        {
          timeoutMs: 30_000,
          intervalMs: 2_000,
        },
        lab.ctx.clock,
      ),
    ).toBe(true);

    const blocked = await tree1(state, 'h2', 'a2', 'a1');
    expect(blocked.report.walk.root_cause?.id, JSON.stringify(blocked.report.walk)).toBe('stun_unreachable');
    const open = await tree1(state, 'h1', 'a1', 'a2');
    expect(open.report.walk.root_cause?.id, JSON.stringify(open.report.walk)).not.toBe('stun_unreachable');
    expect(open.report.walk.root_cause?.id, JSON.stringify(open.report.walk)).not.toBe('turn_unavailable');
  }, 120_000);
});
