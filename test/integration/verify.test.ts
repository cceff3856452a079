import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { recordRelease } from '../../src/ops/deploy/releases.js';
import type { VerifyReport } from '../../src/ops/verify/deployment.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { run, spawnCli, stateDir, tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { startCoturn } from '../helpers/coturn.js';
import { freePort } from '../helpers/processes.js';
import { connect, getJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, type RunningWitness, startWitness } from '../helpers/witness.js';

let sig: RunningSignaling;
let witness: RunningWitness;
let turn: RunningTurnserver;
let tmp: { dir: string; cleanup: () => void };
let agents: MeshAgent[] = [];

beforeAll(async () => {
  tmp = tempDir();
  [sig, witness, turn] = await Promise.all([startSignaling(), startWitness(), startCoturn()]);
}, 60_000);
afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  agents = [];
});
afterAll(async () => {
  await Promise.all([sig?.stop(), witness?.stop(), turn?.stop()]);
  tmp?.cleanup();
});

function startAgent(id: string, signalingUrl = sig.url): MeshAgent {
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [signalingUrl],
    iceServers: [{ urls: turn.stunUrl }],
    loopbackOnly: true,
  });
  agents.push(a);
  a.start();
  return a;
}

/** Waits until exactly these agents are registered and every pair among `ids` reports connected. */
async function meshOf(ids: string[], registered = ids.length): Promise<void> {
  await waitFor(
    async () => {
      const agents = (await getJson(`${sig.http}/agents`)).json.agents as unknown[];
      const reports = (await getJson(`${sig.http}/connections`)).json.connections as Array<{
        agent_id: string;
        peer_id: string;
        state: string;
      }>;
      const live = reports.filter(
        (c) => c.state === 'connected' && ids.includes(c.agent_id) && ids.includes(c.peer_id),
      );
      return agents.length === registered && live.length === ids.length * (ids.length - 1);
    },
    `${ids.join(', ')} connected to each other`,
    { timeoutMs: 30_000 },
  );
}

const ALL_OK = ['signaling_health', 'agents_registered', 'connections_established', 'message_exchange'].map(
  (name) => ({ name, status: 'ok' }),
);

function verifyArgs(...extra: string[]): string[] {
  return [
    'verify',
    '--signaling',
    sig.url,
    '--witness',
    witness.url,
    '--set',
    `IF_WITNESS_API_KEY=${API_KEY}`,
    '--stun',
    turn.stunUrl,
    '--loopback',
    '--messages',
    '10',
    // Latency depends on this machine's load, not on what these tests prove; the budget itself is
    // tested in agent-cli.test.ts.
    '--max-rtt-p95',
    '10s',
    '--state-dir',
    stateDir(tmp.dir),
    '--json',
    ...extra,
  ];
}

async function witnessEvents(traceId: string): Promise<Array<Record<string, any>>> {
  const res = await fetch(`${witness.url}/api/query`, {
    method: 'POST',
    body: JSON.stringify({ query: { trace_id: traceId } }),
    signal: AbortSignal.timeout(5_000),
  });
  return ((await res.json()) as { results: Array<Record<string, any>> }).results;
}

describe('ifmesh verify (the runbook verify-deployment.sh)', () => {
  it('passes all four steps on a full mesh and logs each step to the witness under one trace id', async () => {
    startAgent('v-1');
    startAgent('v-2');
    startAgent('v-3');
    await meshOf(['v-1', 'v-2', 'v-3']);
    const r = await run(verifyArgs('--deployment-id', 'dep-full', '--retries', '3', '--interval', '100ms'), {
      env: { PATH: process.env.PATH ?? '' },
      cwd: tmp.dir,
    });
    const report = JSON.parse(r.stdout) as VerifyReport;
    // Objects, so that a failure shows each step's detail.
    expect(report.steps).toMatchObject(ALL_OK);
    expect(report.steps[2]!.detail).toBe('3/3 agent pairs connected');
    expect(r.code).toBe(0);
    expect(report.deployment_id).toBe('dep-full');
    // The client flushed on close: every step is in the witness, tagged with the run's ids.
    const events = await witnessEvents(report.trace_id);
    const steps = events.filter((e) => e.event === 'deployment_verification_step');
    expect(steps.map((e) => e.metadata.step)).toEqual([
      'signaling_health',
      'agents_registered',
      'connections_established',
      'message_exchange',
    ]);
    expect(new Set(events.map((e) => e.deployment_id))).toEqual(new Set(['dep-full']));
    expect(events.at(-1)).toMatchObject({
      event: 'deployment_verification_completed',
      metadata: { ok: true, exit_code: 0 },
    });
  }, 120_000);

  it('runs from the built binary as a user runs it (exit 0, one JSON document)', async () => {
    startAgent('b-1');
    startAgent('b-2');
    await meshOf(['b-1', 'b-2']);
    const r = await spawnCli(verifyArgs('--retries', '3', '--interval', '100ms'), {
      cwd: tmp.dir,
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as VerifyReport;
    expect(report.steps).toMatchObject(ALL_OK);
    expect(report.steps[2]!.detail).toBe('1/1 agent pairs connected');
  }, 90_000);

  it('fails with too few agents once its retries are spent, skipping the later steps (exit 1)', async () => {
    startAgent('lonely-1');
    await waitFor(
      async () => (await getJson(`${sig.http}/agents`)).json.agents.length === 1,
      'one agent registered',
    );
    const r = await run(verifyArgs('--retries', '3', '--interval', '20ms'), {
      env: { PATH: process.env.PATH ?? '' },
      cwd: tmp.dir,
    });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as VerifyReport;
    expect(report.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['signaling_health', 'ok', 1],
      ['agents_registered', 'fail', 3],
      ['connections_established', 'skipped', 0],
      ['message_exchange', 'skipped', 0],
    ]);
    expect(report.steps[1]!.detail).toBe('insufficient agents registered: 1 (at least 2)');
  }, 60_000);

  it('warns on partial connectivity: half the pairs connected passes, as in the runbook', async () => {
    // A registered client that never answers an offer: the three real agents connect among
    // themselves (3 pairs) but not to it, so 3 of the 4·3/2 = 6 pairs are connected.
    const silent = await connect(sig.url);
    try {
      await silent.register('silent-1');
      startAgent('p-1');
      startAgent('p-2');
      startAgent('p-3');
      await meshOf(['p-1', 'p-2', 'p-3'], 4);
      const r = await run(verifyArgs('--retries', '2', '--interval', '20ms'), {
        env: { PATH: process.env.PATH ?? '' },
        cwd: tmp.dir,
      });
      const report = JSON.parse(r.stdout) as VerifyReport;
      expect(report.steps[2]).toMatchObject({
        name: 'connections_established',
        status: 'warn',
        detail: 'partial connectivity: 3/6 agent pairs connected',
        data: { connected: 3, expected: 6, agents: 4 },
      });
      expect(report.steps[3]).toMatchObject({ name: 'message_exchange', status: 'ok' });
      expect(r.code).toBe(0);
    } finally {
      silent.close();
    }
  }, 120_000);

  it("fails when an agent of the fleet's current release is not registered, naming it, though two others are", async () => {
    const state = stateDir(tmp.dir, 'released');
    await recordRelease(openStateDir(state), {
      id: 'rel-test',
      deployment_id: 'dep-test',
      ref: 'test',
      config_hash: 'x',
      created_at: new Date().toISOString(),
      processes: [],
      agents: ['rel-1', 'rel-2', 'rel-3'],
    });
    startAgent('rel-1');
    startAgent('rel-2');
    await meshOf(['rel-1', 'rel-2']);
    const r = await run(verifyArgs('--retries', '2', '--interval', '20ms', '--state-dir', state), {
      env: { PATH: process.env.PATH ?? '' },
      cwd: tmp.dir,
    });
    const report = JSON.parse(r.stdout) as VerifyReport;
    expect(report.steps[1]).toMatchObject({
      name: 'agents_registered',
      status: 'fail',
      detail:
        'rel-3 of release rel-test not registered (2 agents registered) — see `ifmesh status` and `ifmesh logs deploy-agent-rel-3`',
      data: { agents: 2, missing: ['rel-3'] },
    });
    expect(r.code).toBe(1);
  }, 60_000);

  it('recovers within its retries once the agents arrive (retries wait on the injected clock)', async () => {
    startAgent('late-1');
    await waitFor(
      async () => (await getJson(`${sig.http}/agents`)).json.agents.length === 1,
      'one agent registered',
    );
    const clock = new FakeClock();
    const pending = run(verifyArgs('--retries', '30', '--interval', '5s'), {
      env: { PATH: process.env.PATH ?? '' },
      cwd: tmp.dir,
      clock,
    });
    // verify found one agent and now waits 5 s (of fake time) before its next attempt.
    await waitFor(() => clock.pending > 0, 'verify to wait for a retry');
    startAgent('late-2');
    startAgent('late-3');
    await meshOf(['late-1', 'late-2', 'late-3']);
    await clock.advance(5_000);
    const r = await pending;
    const report = JSON.parse(r.stdout) as VerifyReport;
    // Objects, so that a failure shows each step's detail.
    expect(report.steps).toMatchObject(ALL_OK);
    expect(report.steps[1]!.attempts).toBe(2);
    expect(r.code).toBe(0);
  }, 120_000);

  it('merges every signaling instance: agents on two instances count together', async () => {
    const sig2 = await startSignaling({ instanceId: 'test-2' });
    try {
      startAgent('i-1');
      startAgent('i-2', sig2.url);
      await waitFor(
        async () => (await getJson(`${sig2.http}/agents`)).json.agents.length === 1,
        'i-2 registered',
      );
      await waitFor(
        async () => (await getJson(`${sig.http}/agents`)).json.agents.length === 1,
        'i-1 registered',
      );
      const args = verifyArgs('--retries', '1');
      args[args.indexOf('--signaling') + 1] = `${sig.url},${sig2.url}`;
      const r = await run(args, { env: { PATH: process.env.PATH ?? '' }, cwd: tmp.dir });
      const report = JSON.parse(r.stdout) as VerifyReport;
      // Two registries that do not share agents: both agents count, but they never see each other.
      expect(report.steps.slice(0, 3)).toMatchObject([
        { name: 'signaling_health', status: 'ok' },
        { name: 'agents_registered', status: 'ok', detail: '2 agents registered' },
        {
          name: 'connections_established',
          status: 'fail',
          detail: 'too few connections: 0/1 agent pairs connected (at least half needed)',
        },
      ]);
      expect(r.code).toBe(1);
    } finally {
      await sig2.stop();
    }
  }, 60_000);

  it('exits 3 when signaling is unreachable, and says so per step for people', async () => {
    const r = await run(
      [
        'verify',
        '--signaling',
        `ws://127.0.0.1:${await freePort()}`,
        '--retries',
        '2',
        '--interval',
        '10ms',
        '--state-dir',
        stateDir(tmp.dir),
      ],
      { env: { PATH: process.env.PATH ?? '' }, cwd: tmp.dir },
    );
    expect(r.code).toBe(3);
    // No terminal: the step that ran as its progress line, once; the steps skipped after it in the result.
    expect(r.stdout.match(/signaling server healthy/g)).toHaveLength(1);
    expect(r.stdout).toMatch(
      /^✗ signaling server healthy http:\/\/127\.0\.0\.1:\d+ is unreachable: ECONNREFUSED$/m,
    );
    expect(r.stdout).toMatch(/^- 2\. agent mesh formed/m);
    expect(r.stdout).toMatch(/deployment verification failed/);
  }, 60_000);

  it('rejects a bad --interval with a usage error (exit 2)', async () => {
    const r = await run(['verify', '--interval', 'soon'], { env: {}, cwd: tmp.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--interval soon is not a duration');
  });
});
