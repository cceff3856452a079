// Network faults between two agents, in namespaces the test makes (issue 23.5). A NAT lab (`ifmesh
// lab up`, src/ops/lab: signaling, coturn and the witness in its public namespace) with two public
// hosts (`none`: 203.0.113.201 and .202, documentation range, nothing routed out), one werift agent
// process in each (test/faults/lab-peer.mjs, started with `ifmesh lab run`), and the faults put on
// the lab's links with `ifmesh lab run <node> -- ip …`:
//   - 5 % loss and 200 ms delay on h2's link, each way (so 400 ms round trips between the agents,
//     h2's signaling included), from before the agents start: they must still form their signed
//     DataChannel, and every sequenced message each sends arrives once, in order, verified (no
//     signature failure, no message error). Figure: delivery p95 (sender's clock to receiver's).
//     The kernel this runs on has no sch_netem (and no modules to load: `tc qdisc … netem` answers
//     "Specified qdisc kind is unknown"), so the impairment is netem's in userspace:
//     test/faults/lab-wire.py, between h2's veth and the lab's bridge in the public namespace.
//   - partition: h2's link down while the pair is connected, then up again: h1's agent detects it at
//     its heartbeat timeout, the pair heals by itself once the link is back, and messages sent before
//     and after all arrive once, in order. Figure: detection and healing times.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LabState, labDown, labUp } from '../../src/ops/lab/lab.js';
import { BIN, ROOT, run } from '../helpers/cli.js';
import { labFixture } from '../helpers/lab.js';
import { trackPid } from '../helpers/pids.js';
import { waitFor } from '../helpers/wait.js';
import { withFigure } from './figures.js';
import { seconds } from './fleet-fixture.js';

const lab = labFixture('n');
const HEARTBEAT_MS = 3_000;
let state: LabState;

beforeAll(async () => {
  const up = await labUp({ name: lab.name, nats: ['none', 'none'], turnServers: 1, dryRun: false }, lab.ctx);
  if (up.dry_run) throw new Error('not a dry run');
  state = up.lab;
}, 60_000);
afterAll(async () => {
  // Stops everything still running in the lab's namespaces (the peers too), then removes them.
  await labDown({ name: lab.name }, lab.ctx).catch(() => {});
  lab.cleanup();
}, 30_000);

/** `ifmesh lab run --name <lab> <host> -- <command…>`; exit 0 required. */
async function inHost(host: string, command: string[]): Promise<void> {
  const r = await run(['lab', 'run', '--name', lab.name, host, '--', ...command], {
    env: { IFMESH_LAB_DIR: lab.dir, PATH: process.env.PATH },
  });
  expect(r.code, `${command.join(' ')}: ${r.stderr}`).toBe(0);
}

/**
 * `lossPct` % loss and `delayMs` each way on `host`'s link: its veth is taken off the lab's bridge
 * and joined to it again through lab-wire.py (a veth pair: wNa for the wire, wNb on the bridge).
 */
async function slowLink(host: 'h1' | 'h2', delayMs: number, lossPct: number) {
  const n = host.slice(1);
  for (const cmd of [
    ['ip', 'link', 'set', host, 'nomaster'],
    ['ip', 'link', 'add', `w${n}a`, 'type', 'veth', 'peer', 'name', `w${n}b`],
    ['ip', 'link', 'set', `w${n}b`, 'master', 'br0', 'up'],
    ['ip', 'link', 'set', `w${n}a`, 'up'],
  ])
    await inHost('pub', cmd);
  const child = spawn(
    process.execPath,
    [
      BIN,
      'lab',
      'run',
      '--name',
      lab.name,
      'pub',
      '--',
      'python3',
      path.join(ROOT, 'test/faults/lab-wire.py'),
      '--a',
      host,
      '--b',
      `w${n}a`,
      '--delay-ms',
      String(delayMs),
      '--loss',
      String(lossPct),
    ],
    { env: { PATH: process.env.PATH ?? '', IFMESH_LAB_DIR: lab.dir }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  trackPid(child.pid);
  const lines: Record<string, unknown>[] = [];
  let err = '';
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l)));
  child.stderr!.on('data', (d) => {
    err += d;
  });
  await waitFor(() => lines.some((l) => l.ready), `the wire on ${host}: ${err}`, { timeoutMs: 20_000 });
  return {
    /** Stops the wire (returns what it passed and dropped) and puts the host's veth back on the bridge. */
    async remove() {
      child.kill('SIGTERM');
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, 'the wire stopped');
      await inHost('pub', ['ip', 'link', 'del', `w${n}a`]);
      await inHost('pub', ['ip', 'link', 'set', host, 'master', 'br0']);
      return lines.find((l) => l.stopped) as { passed: number; dropped: number } | undefined;
    },
  };
}

type Line = { t: number } & Record<string, unknown>;

/** A lab-peer agent on `host` (h1 or h2) for `id`, whose peer is `peer`, as a `lab run` process. */
function peerOn(host: 'h1' | 'h2', id: string, peer: string) {
  const h = state.plan.hosts[Number(host.slice(1)) - 1]!;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      BIN,
      'lab',
      'run',
      '--name',
      lab.name,
      host,
      '--',
      process.execPath,
      path.join(ROOT, 'test/faults/lab-peer.mjs'),
      '--id',
      id,
      '--peer',
      peer,
      '--key',
      path.join(state.dir, `${id}.key`),
      '--signaling',
      state.plan.signaling.url,
      '--stun',
      state.plan.turn[0]!.stunUrl,
      '--address',
      h.address,
      '--heartbeat',
      String(HEARTBEAT_MS),
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', IFMESH_LAB_DIR: lab.dir },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  trackPid(child.pid);
  const lines: Line[] = [];
  let err = '';
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Line);
    } catch {
      err += `${l}\n`;
    }
  });
  child.stderr!.on('data', (d) => {
    err = (err + d).slice(-4_000);
  });
  const has = (key: string, value?: unknown) =>
    lines.some((l) => key in l && (value === undefined || l[key] === value));
  return {
    lines,
    output: () => err,
    command: (c: Record<string, unknown>) => child.stdin!.write(`${JSON.stringify(c)}\n`),
    has,
    /** Waits for a line with `key` (equal to `value` when given) after index `from`. */
    async waitLine(what: string, key: string, value: unknown, from = 0, timeoutMs = 60_000) {
      await waitFor(
        () => lines.slice(from).some((l) => key in l && (value === undefined || l[key] === value)),
        `${id}: ${what}\n${err}`,
        { timeoutMs, intervalMs: 50 },
      );
      return lines.slice(from).find((l) => key in l && (value === undefined || l[key] === value))!;
    },
    sent: () => lines.filter((l) => 'sent' in l).map((l) => l.sent as number),
    received: () => lines.filter((l) => 'recv' in l),
    stop: async () => {
      child.kill('SIGTERM');
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, `${id} stopped`, {
        timeoutMs: 10_000,
      });
    },
  };
}
type Peer = ReturnType<typeof peerOn>;

/**
 * Every message `from` sent arrived at `to` exactly once, in order. The two peers report through
 * their own pipes, so the receiver's line can come in before the sender's: both are waited for.
 */
async function checkSequence(from: Peer, to: Peer, count: number) {
  await waitFor(
    () => from.sent().length >= count && to.received().length >= count,
    `${count} sent and received lines (sent ${from.sent().length}, received ${to.received().length})`,
    { timeoutMs: 10_000 },
  );
  const sent = from.sent();
  const got = to.received().map((l) => l.recv as number);
  expect(got, 'received once each, in order').toEqual(sent);
  return sent.length;
}

/** The q-quantile (nearest rank) of `xs`. */
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * xs.length) - 1)] ?? 0;

async function counters(p: Peer, from: number) {
  p.command({ counters: true });
  return (await p.waitLine('its counters', 'counters', undefined, from)).counters as Record<string, number>;
}

describe('network faults between two agents in lab namespaces', () => {
  it(
    '5 % loss and 200 ms delay on one agent’s link: the pair connects, every message arrives once, in order, verified',
    () =>
      withFigure(
        {
          fault: '5 % loss + 200 ms delay each way between two agents (lab namespaces)',
          trials: 400,
          expected:
            'pair connects; 400 of 400 messages delivered once, in order, verified; delivery p95 reported',
        },
        async () => {
          const wire = await slowLink('h2', 200, 5);
          const a1 = peerOn('h1', 'a1', 'a2');
          const a2 = peerOn('h2', 'a2', 'a1');
          try {
            await a1.waitLine('registered', 'registered', true, 0, 90_000);
            await a2.waitLine('registered', 'registered', true, 0, 90_000);
            const t0 = Date.now();
            await a1.waitLine('the link to a2', 'link', true, 0, 120_000);
            await a2.waitLine('the link to a1', 'link', true, 0, 120_000);
            const formedMs = Date.now() - t0;
            a1.command({ send: 200, gapMs: 20 });
            a2.command({ send: 200, gapMs: 20 });
            await waitFor(
              () => a1.received().length >= 200 && a2.received().length >= 200,
              `400 messages delivered (a1 got ${a1.received().length}, a2 got ${a2.received().length})`,
              { timeoutMs: 120_000, intervalMs: 100 },
            );
            const n = (await checkSequence(a1, a2, 200)) + (await checkSequence(a2, a1, 200));
            expect(n).toBe(400);
            const c1 = await counters(a1, a1.lines.length);
            const c2 = await counters(a2, a2.lines.length);
            for (const c of [c1, c2]) expect(c).toMatchObject({ signature_failures: 0, message_errors: 0 });
            const ms = [...a1.received(), ...a2.received()].map((l) => l.ms as number);
            return {
              observed: `formed in ${seconds(formedMs)}; ${n} of 400 delivered once, in order, 0 signature failures; delivery p50 ${quantile(ms, 0.5)} ms, max ${Math.max(...ms)} ms`,
              figure: `delivery p95 ${quantile(ms, 0.95)} ms`,
            };
          } finally {
            await a1.stop();
            await a2.stop();
            await wire.remove();
          }
        },
      ),
    300_000,
  );

  it(
    'h2 partitioned (link down), then healed: detected at the heartbeat timeout, the pair heals by itself, nothing sent is lost',
    () =>
      withFigure(
        {
          fault: 'one agent partitioned (its link down), then healed (lab namespaces)',
          trials: 1,
          expected: `detected at the ${HEARTBEAT_MS / 1000} s heartbeat timeout; pair heals after the link is back; every message sent delivered once, in order`,
        },
        async () => {
          const a1 = peerOn('h1', 'b1', 'b2');
          const a2 = peerOn('h2', 'b2', 'b1');
          try {
            await a1.waitLine('the link to b2', 'link', true, 0, 90_000);
            await a2.waitLine('the link to b1', 'link', true, 0, 90_000);
            a1.command({ send: 50, gapMs: 10 });
            await waitFor(() => a2.received().length >= 50, 'the first 50 messages', { timeoutMs: 60_000 });

            const mark = a1.lines.length;
            await inHost('h2', ['ip', 'link', 'set', 'eth0', 'down']);
            const cut = Date.now();
            const detected = await a1.waitLine(
              'the partition detected',
              'event',
              'mesh_partition_detected',
              mark,
            );
            const detectMs = detected.t - cut;
            await a1.waitLine('the link down', 'link', false, mark);

            const mark2 = a1.lines.length;
            await inHost('h2', ['ip', 'link', 'set', 'eth0', 'up']);
            const back = Date.now();
            const healed = await a1.waitLine('the link back', 'link', true, mark2, 120_000);
            const healMs = healed.t - back;
            a1.command({ send: 50, gapMs: 10 });
            await waitFor(() => a2.received().length >= 100, 'the next 50 messages', { timeoutMs: 60_000 });
            const n = await checkSequence(a1, a2, 100);
            expect(n).toBe(100);
            return {
              observed: `detected after ${seconds(detectMs)}, healed ${seconds(healMs)} after the link came back; ${n} of ${n} sent delivered once, in order`,
              figure: `detect ${seconds(detectMs)}, heal ${seconds(healMs)}`,
            };
          } finally {
            await inHost('h2', ['ip', 'link', 'set', 'eth0', 'up']).catch(() => {});
            await a1.stop();
            await a2.stop();
          }
        },
      ),
    300_000,
  );
});
