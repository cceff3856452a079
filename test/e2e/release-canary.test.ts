// The canary of a new build (issue 19.2): three packed versions of this project (v1 as it is; a
// faulty v2 whose agents sign under another domain, so every peer rejects them; a good v2), and one
// fleet: deploy v1 → canary the faulty v2 → its analysis fails → only the canary agent went to v2's
// code and is back on v1's (its /proc cmdline) → deployment_rollback names the gate. Then the good
// v2 promotes with every agent and both signaling instances on v2's code — rolled one at a time, so
// one instance answers /health throughout — and `rollback` puts them all back on v1's. Full tier:
// three installs and three canaries (~3 min).
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { entryScript, packRelease, wrongSignatureDomain } from '../helpers/release.js';
import { AGENTS, cli, current, dir, events, RTT_BUDGET, release, states, WINDOW } from './rollout-fixture.js';

const packs = path.join(dir, 'packs');
const tgz = { v1: '', bad: '', v2: '' };

beforeAll(async () => {
  tgz.v1 = await packRelease(packs);
  tgz.bad = await packRelease(packs, { version: '0.2.0-faulty', patch: wrongSignatureDomain });
  tgz.v2 = await packRelease(packs, { version: '0.2.0' });
}, 180_000);

/** Entry script of each running agent and signaling instance, by process name. */
function entries(state: string): Record<string, string | undefined> {
  return Object.fromEntries(
    listProcesses(openStateDir(state))
      .filter((p) => p.role === 'agents' || p.role === 'signaling')
      .map((p) => [p.name, entryScript(p.pid)]),
  );
}
const pids = (state: string) =>
  Object.fromEntries(listProcesses(openStateDir(state)).map((p) => [p.name, p.pid]));
/** A canary of `tarball` moving one agent, then the rest. */
const canary = (state: string, tarball: string) =>
  cli(
    [...'canary --steps 1,100% --json'.split(' '), '--release', tarball, ...WINDOW, ...RTT_BUDGET],
    state,
    300_000,
  );
const binOf = (state: string, id: string) => release(state, id).build.bin as string;
const agentNames = AGENTS.map((a) => `deploy-agent-${a}`);
const SIGNALING = ['deploy-signaling-1', 'deploy-signaling-2'];
const everyProcess = [...agentNames, ...SIGNALING];

/**
 * Polls both instances' /health until stopped; returns how many polls found neither answering
 * (a roll that restarted both at once leaves the fleet without signaling).
 */
function watchHealth(ports: number[]) {
  let stop = false;
  let polls = 0;
  let bothDown = 0;
  const up = (port: number) =>
    fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false,
    );
  const done = (async () => {
    for (let i = 0; !stop && i < 100_000; i++) {
      const answers = await Promise.all(ports.map(up));
      polls++;
      if (!answers.some(Boolean)) bothDown++;
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return async () => {
    stop = true;
    await done;
    return { polls, bothDown };
  };
}

describe('canary of a new build', () => {
  it('a faulty v2 fails analysis and only its canary agent goes back to v1; a good v2 promotes; rollback restores v1', async () => {
    const state = path.join(dir, 'release-canary');
    states.push(state);
    const base = await freePortRange(2);
    const deploy = await cli(
      [
        'deploy',
        '--release',
        tgz.v1,
        '--instances',
        '2',
        '--base-port',
        String(base),
        '--nginx-port',
        String(await freePort()),
      ],
      state,
      300_000,
    );
    expect(deploy.code, deploy.stderr).toBe(0);
    const v1 = current(state);
    const v1Bin = binOf(state, v1);
    expect(Object.values(entries(state))).toEqual(Array(5).fill(v1Bin));

    // The faulty build: the first phase moves one agent, whose messages every peer rejects.
    const before = pids(state);
    const bad = await canary(state, tgz.bad);
    expect(bad.code, bad.stderr).toBe(1);
    const badOut = JSON.parse(bad.stdout);
    expect(badOut.install).toMatchObject({ installed: true, build: { version: '0.2.0-faulty' } });
    expect(badOut.plan.candidate.code).toMatchObject({ version: '0.2.0-faulty' });
    expect(badOut.plan.phases[0].new_agents).toEqual(['agent-r1']);
    expect(badOut.state.status).toBe('failed');
    // All are on v1's code again.
    expect(current(state)).toBe(v1);
    expect(Object.values(entries(state))).toEqual(Array(5).fill(v1Bin));
    const gate = badOut.state.failed_gate.gate;
    expect(['signature_failures', 'connection_success', 'witness_error_rate']).toContain(gate);
    const rb = (await events({ event: 'deployment_rollback' })).filter(
      (e) => e.metadata?.canary_id === badOut.plan.canary_id,
    );
    expect(rb).toHaveLength(1);
    expect(rb[0]!.metadata).toMatchObject({ gate, agents: ['agent-r1'], to: v1 });
    // The rejected signatures were the faulty build's: each between agent-r1 and a peer (the peers
    // reject its messages, and it rejects theirs, verifying under its wrong domain).
    const rejected = await events({ event: 'signature_verification_failed' });
    expect(rejected.length).toBeGreaterThan(0);
    for (const e of rejected) expect([e.agent_id, e.peer_id], JSON.stringify(e)).toContain('agent-r1');
    expect(rejected.some((e) => e.peer_id === 'agent-r1')).toBe(true);
    const failedRecord = release(state, badOut.plan.canary_id);
    expect(failedRecord).toMatchObject({ outcome: 'failed', build: { version: '0.2.0-faulty' } });
    // Only the canary agent was moved (there and back): the others kept their processes.
    const after = pids(state);
    expect(after['deploy-agent-agent-r1']).not.toBe(before['deploy-agent-agent-r1']);
    expect([
      after['deploy-agent-agent-r2'],
      after['deploy-agent-agent-r3'],
      after['deploy-signaling-1'],
      after['deploy-signaling-2'],
    ]).toEqual([
      before['deploy-agent-agent-r2'],
      before['deploy-agent-agent-r3'],
      before['deploy-signaling-1'],
      before['deploy-signaling-2'],
    ]);

    // The good build promotes: every agent and both signaling instances on v2's code, the instances
    // rolled one at a time (each healthy before the next), so signaling answered throughout.
    const health = watchHealth([base, base + 1]);
    const good = await canary(state, tgz.v2);
    const watched = await health();
    expect(watched.polls).toBeGreaterThan(0);
    expect(watched.bothDown).toBe(0);
    expect(good.code, good.stderr).toBe(0);
    const goodOut = JSON.parse(good.stdout);
    expect(goodOut.state.status).toBe('completed');
    const v2 = current(state);
    expect(v2).toBe(goodOut.plan.canary_id);
    const v2Bin = binOf(state, v2);
    expect(v2Bin).not.toBe(v1Bin);
    expect(release(state, v2)).toMatchObject({
      ref: '0.2.0',
      outcome: 'promoted',
      build: { version: '0.2.0' },
    });
    expect(entries(state)).toEqual(Object.fromEntries(everyProcess.map((n) => [n, v2Bin])));
    const rolled = (await events({ event: 'canary_signaling_rolled' })).filter(
      (e) => e.metadata?.release === v2,
    );
    expect(rolled).toHaveLength(1);
    expect(rolled[0]!.metadata?.instances).toEqual(SIGNALING.map((name) => ({ name, outcome: 'restarted' })));
    const rel = JSON.parse((await cli(['releases', '--json'], state)).stdout);
    const runs = (bin: string) =>
      rel.installed.find((b: { dir: string }) => bin.startsWith(`${b.dir}/`))?.processes ?? [];
    expect(runs(v2Bin)).toEqual(everyProcess);
    expect(runs(v1Bin)).toEqual([]);

    // rollback after the promoted v2: agents and signaling back on v1's code (kept installed: a switch).
    const back = await cli(['rollback', v1, '--reason', 'drill', '--json'], state, 120_000);
    expect(back.code, back.stderr).toBe(0);
    const plan = JSON.parse(back.stdout).plan;
    expect(plan.code.changes).toBe(true);
    expect(plan.signaling).toEqual(SIGNALING);
    expect(current(state)).toBe(v1);
    expect(entries(state)).toEqual(Object.fromEntries(everyProcess.map((n) => [n, v1Bin])));
  }, 900_000);
});
