// Failover scenario A on real kernel NAT (issue 26.5): two agents behind symmetric NATs, two coturns
// in the lab's public namespace, the pair relayed by coturn 1 (the only TURN server the agents are
// given, as a mesh runs with its primary). coturn 1 is SIGKILLed by its pid from the lab's state;
// `ifmesh failover turn`, run in the public namespace with `lab run` (the lab's signaling, witness,
// TURN credentials and admin token come from labEnv), tests coturn 2 with a real Allocate, pushes
// it to the agents, asks the relayed end to reconnect, and waits for the witness to see it relayed
// by coturn 2. Then `failover validate` passes on its own. Figure: the failover's recovery time.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity } from '../../src/crypto/key-file.js';
import { isAlive } from '../../src/exec/pid.js';
import { type LabState, labUp } from '../../src/ops/lab/lab.js';
import { connections, events, startAgent } from '../../src/ops/lab/matrix.js';
import { waitFor } from '../../src/util/wait.js';
import { withFigure } from '../faults/figures.js';
import { stateDir } from '../helpers/cli.js';
import { ifmeshInLab, labFixture, teardownLab } from '../helpers/lab.js';

const lab = labFixture('f');
const agents: ReturnType<typeof startAgent>[] = [];

/** The UDP sockets coturn `i` holds in its relay port range: one per live allocation. */
function relaySockets(state: LabState, i: number): number {
  const t = state.plan.turn[i]!;
  const out = execFileSync(
    'ip',
    ['netns', 'exec', state.plan.public.namespace, 'ss', '-Huan', 'src', t.addresses[0]],
    { timeout: 5_000 },
  ).toString();
  return out
    .split('\n')
    .map((l) => Number(/:(\d+)$/.exec(l.trim().split(/\s+/)[3] ?? '')?.[1]))
    .filter((p) => p >= t.relayPorts[0] && p <= t.relayPorts[1]).length;
}

describe('failover turn (scenario A) behind symmetric NATs', () => {
  afterAll(() => teardownLab(lab, agents));

  it('moves the relayed pair off the killed coturn onto the other, and validate passes', async () => {
    await withFigure(
      {
        fault: 'coturn kill -9 under agents behind two symmetric NATs (NAT lab), then `failover turn`',
        trials: 1,
        expected: 'the relayed pair moves to the other coturn; `failover validate` passes',
      },
      async () => {
        const up = await labUp(
          { name: lab.name, nats: ['symmetric', 'symmetric'], turnServers: 2, dryRun: false },
          lab.ctx,
        );
        if (up.dry_run) throw new Error('unreachable');
        const state = up.lab;
        const [c1, c2] = state.plan.turn as [LabState['plan']['turn'][0], LabState['plan']['turn'][0]];
        for (const id of ['a1', 'a2']) await loadOrCreateIdentity(path.join(state.dir, `${id}.key`), id);
        agents.push(startAgent(state, 0, 'all', 5_000));
        expect(await agents[0]!.ready, agents[0]!.output()).toBe(true);
        agents.push(startAgent(state, 1, 'all', 5_000));
        expect(await agents[1]!.ready, agents[1]!.output()).toBe(true);

        // Connected, one end on a relay, and that relay is coturn 1's.
        const relayed = async () => {
          const cs = await connections(state, lab.ctx);
          return (
            ['a1', 'a2'].every((a) => cs.some((c) => c.agent_id === a && c.state === 'connected')) &&
            cs.some((c) => c.state === 'connected' && c.candidate_type === 'relay')
          );
        };
        expect(await waitFor(relayed, { timeoutMs: 30_000, intervalMs: 250 }, lab.ctx.clock)).toBe(true);
        // The end that relays names its TURN server (turn_connection_detected), and coturn holds
        // the allocations: coturn 1, not coturn 2.
        const relayedBy = async () =>
          (await Promise.all(['a1', 'a2'].map((a) => events(state, lab.ctx, a))))
            .flat()
            .filter((e) => e.event === 'turn_connection_detected')
            .sort((x, y) => Date.parse(x.timestamp) - Date.parse(y.timestamp))
            .map((e) => e.metadata?.turn_server);
        expect(
          await waitFor(
            async () => (await relayedBy()).length > 0,
            { timeoutMs: 10_000, intervalMs: 250 },
            lab.ctx.clock,
          ),
        ).toBe(true);
        expect(await relayedBy()).toEqual([c1.url]);
        expect(relaySockets(state, 0)).toBeGreaterThan(0);
        expect(relaySockets(state, 1)).toBe(0);

        // The fault: coturn 1 dies, by the pid the lab recorded.
        const pid = state.processes.find((p) => p.name === c1.name)!.pid;
        process.kill(pid, 'SIGKILL');
        expect(await waitFor(() => !isAlive(pid), { timeoutMs: 5_000, intervalMs: 25 }, lab.ctx.clock)).toBe(
          true,
        );

        const id = 'failover-lab-a';
        const common = [
          // Its temporary agents' STUN: the surviving coturn (labEnv lists both, coturn 1 first).
          '--stun',
          c2.stunUrl,
          // The latency budget is not what this test is about (a loaded machine).
          '--max-rtt-p95',
          '10s',
          '--state-dir',
          stateDir(state.dir, 'operator'),
          '--json',
        ];
        const fo = await ifmeshInLab(lab, 'pub', [
          'failover',
          'turn',
          '--failed',
          c1.url,
          '--replacement',
          c2.url,
          '--id',
          id,
          '--timeout',
          '60s',
          ...common,
        ]);
        let doc: any;
        try {
          doc = JSON.parse(fo.stdout);
        } catch {
          throw new Error(`failover turn exited ${fo.code}: ${fo.stderr.slice(-2_000)}`);
        }
        expect(fo.code, `${JSON.stringify(doc.report?.steps ?? doc)}\n${fo.stderr}`).toBe(0);
        expect(doc.report.turn.probe.relayed).toMatch(
          new RegExp(`^${c2.addresses[0].replace(/\./g, '\\.')}:`),
        );
        expect(doc.report.turn.reconnected.length).toBeGreaterThan(0);
        expect(doc.report.turn.on_replacement).toEqual(expect.arrayContaining(doc.report.turn.reconnected));
        expect(doc.validation.passed, JSON.stringify(doc.validation.checks)).toBe(true);

        // The pair is connected again, relayed by coturn 2, which holds its allocations now.
        expect(await waitFor(relayed, { timeoutMs: 15_000, intervalMs: 250 }, lab.ctx.clock)).toBe(true);
        expect((await relayedBy()).at(-1)).toBe(c2.url);
        expect(relaySockets(state, 1)).toBeGreaterThan(0);

        // `failover validate` on its own, later, as an operator runs it.
        const v = await ifmeshInLab(lab, 'pub', [
          'failover',
          'validate',
          '--id',
          id,
          '--scenario',
          'A',
          ...common,
        ]);
        expect(v.code, v.stdout + v.stderr.slice(-2_000)).toBe(0);
        expect(JSON.parse(v.stdout).passed).toBe(true);

        const ms = doc.report.recovery.recovery_ms as number;
        return {
          observed: `the pair of ${doc.report.turn.reconnected.join(', ')} relayed by coturn 2 ${(ms / 1000).toFixed(1)} s after \`failover turn\` started; validate passed`,
          figure: `${(ms / 1000).toFixed(1)} s to move`,
        };
      },
    );
  }, 180_000);
});
