// A canary agent that crashes and is brought back by the state's supervisor fails agents_healthy
// (src/ops/rollout/analysis.ts): the supervisor keeps agents running, so "running" alone would pass
// a candidate that crash-loops between checks. Real processes, the real watchdog pass.
import { mkdirSync, writeFileSync } from 'node:fs';
import { getGlobalDispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { Supervisor } from '../../src/ops/fleet/supervisor.js';
import { watchdogPass } from '../../src/ops/fleet/watchdog.js';
import { DEFAULT_THRESHOLDS } from '../../src/ops/monitoring/thresholds.js';
import { agentProcessName } from '../../src/ops/rollout/agents.js';
import { evaluateGates, measure, restartCounts } from '../../src/ops/rollout/analysis.js';
import { readProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { run, tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SLEEPER = 'setInterval(() => {}, 1 << 30); process.on("SIGTERM", () => process.exit(0));';
const ctx = { clock: systemClock, signal: new AbortController().signal, dispatcher: getGlobalDispatcher() };

describe('agents_healthy counts restarts', () => {
  it('fails a canary agent the supervisor restarted, though it runs again', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const state = openStateDir(t.dir);
    const sup = new Supervisor(state, { clock: systemClock, owner: 'test' });
    const started: number[] = [];
    cleanups.push(() => {
      for (const r of sup.list()) started.push(r.pid);
      for (const pid of started) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    });
    for (const id of ['a', 'b']) {
      const pid = sup.start({
        name: agentProcessName(id),
        role: 'agents',
        command: process.execPath,
        args: ['-e', SLEEPER],
        supervised: true,
      });
      trackPid(pid);
      started.push(pid);
    }
    const base = restartCounts(sup, ['a', 'b']);
    expect(base).toEqual({ a: 0, b: 0 });
    const signals = () =>
      measure({
        sup,
        agents: ['a', 'b'],
        instances: [],
        since: new Date().toISOString(),
        logOffsets: {},
        restartsAtStart: base,
        witness: null,
      });
    const healthy = (s: Awaited<ReturnType<typeof signals>>) =>
      evaluateGates(s, DEFAULT_THRESHOLDS).find((g) => g.gate === 'agents_healthy')!;
    expect(healthy(await signals())).toMatchObject({ status: 'ok', value: '2/2 running' });

    const victim = readProcess(state, agentProcessName('a'))!.pid;
    process.kill(victim, 'SIGKILL');
    await waitFor(() => !isAlive(victim), 'agent a to die');
    const done = await watchdogPass({ state }, new Map(), ctx);
    expect(done.map((d) => [d.name, d.result?.ok])).toEqual([[agentProcessName('a'), true]]);
    const back = readProcess(state, agentProcessName('a'))!.pid;
    started.push(back);
    expect(isAlive(back)).toBe(true);
    expect(healthy(await signals())).toMatchObject({
      status: 'failed',
      value: '2/2 running; restarted: a 1×',
    });
  });

  it('canary promote refuses a canary frozen because its candidate agents never registered', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const state = openStateDir(t.dir);
    mkdirSync(t.dir, { recursive: true });
    writeFileSync(
      state.canary,
      JSON.stringify({
        plan: { canary_id: 'canary-x' },
        status: 'frozen',
        step: { kind: 'move', phase: 0 },
        failed_gate: {
          gate: 'agents_registered',
          status: 'failed',
          value: 'agent-1',
          threshold: 'all registered',
        },
        on_candidate: ['agent-1'],
        message: 'frozen',
      }),
    );
    const r = await run(['canary', 'promote', '--state-dir', t.dir], { cwd: t.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'canary canary-x froze because its candidate agents never registered (agent-1): it cannot be promoted',
    );
    expect(r.stderr).toContain('`ifmesh canary abort` rolls it back');
  });
});
