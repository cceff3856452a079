// The analysis rules on a fake clock (a five-minute window in milliseconds), the pure gates and their
// four measurement states, phases, monitor triggers, rollback target choice, and how release records
// keep --set secrets out of themselves.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type AgentSpec,
  currentRelease,
  type Release,
  readRelease,
  recordRelease,
  specEnv,
} from '../../src/ops/deploy/releases.js';
import { DEFAULT_THRESHOLDS, parseThresholds } from '../../src/ops/monitoring/thresholds.js';
import { DEFAULT_REQUIRED, evaluateGates, type Signals } from '../../src/ops/rollout/analysis.js';
import { buildCanaryPlan, phaseCounts } from '../../src/ops/rollout/canary-plan.js';
import {
  type AnalysisRules,
  checkRecord,
  freshProgress,
  type Measurement,
  recordCheck,
  runAnalysis,
  windowVerdict,
} from '../../src/ops/rollout/measurement.js';
import { evaluateWindow, MONITOR_REQUIRED } from '../../src/ops/rollout/monitor.js';
import { chooseTarget } from '../../src/ops/rollout/rollback.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { FakeClock } from '../helpers/clock.js';

const T = DEFAULT_THRESHOLDS;
const healthy: Signals = {
  agents: ['a'],
  running: ['a'],
  registered: { ids: ['a'] },
  pairs: { pairs: [{ agent: 'a', peer: 'b', state: 'connected', rtt_ms: 3 }] },
  log_errors: { count: 0, first: null },
  witness: { total: 40, errors: 1, signature_failures: 0 },
};
const down = { error: 'witness http://127.0.0.1:9: unreachable' };
const gate = (g: Measurement[], name: string) => g.find((x) => x.gate === name)!;
const rules: AnalysisRules = { failure_limit: 0, consecutive_error_limit: 4, required: DEFAULT_REQUIRED };

/** Runs a window of `checks` 60 s checks on a fake clock, with the signals of each check from `at`. */
async function window(checks: number, at: (n: number) => Signals, r: AnalysisRules = rules) {
  const clock = new FakeClock();
  let n = 0;
  const done = runAnalysis({
    checks,
    intervalMs: 60_000,
    rules: r,
    progress: freshProgress(),
    clock,
    request: async () => undefined,
    evaluate: async () => evaluateGates(at(n++), T),
    onCheck: () => {},
  });
  for (let i = 0; i <= checks; i++) await clock.advance(60_000);
  return { outcome: await done, start: Date.UTC(2026, 0, 1) };
}

describe('canary gates as measurements', () => {
  it('measures every gate ok on healthy signals, from the one threshold table', () => {
    const g = evaluateGates(healthy, T);
    expect(g.every((x) => x.status === 'ok')).toBe(true);
    expect(gate(g, 'witness_error_rate').threshold).toBe('<= 0.05');
    expect(gate(g, 'connection_success').threshold).toMatch(/^>= 0.95 /);
    expect(gate(g, 'rtt_p95_ms').threshold).toBe(`<= ${T.rtt_p2p_p95_ms}`);
    const strict = parseThresholds(['error_rate=0.01']);
    expect(gate(evaluateGates(healthy, strict), 'witness_error_rate')).toMatchObject({ status: 'failed' });
    // A ratio above 1 would never trip: refused, with the ratio to write instead.
    expect(() => parseThresholds(['error_rate=2'])).toThrow(/error_rate is a ratio from 0 to 1/);
    expect(() => parseThresholds(['connection_failure_ratio=5'])).toThrow(/ratio from 0 to 1/);
    expect(parseThresholds(['rtt_p2p_p95_ms=250']).rtt_p2p_p95_ms).toBe(250);
  });

  it('fails on an error rate over 5 %, a signature failure, RTT p95 over its threshold, a dead or unregistered agent', () => {
    const w = (errors: number, signature_failures: number) => ({ total: 20, errors, signature_failures });
    expect(gate(evaluateGates({ ...healthy, witness: w(2, 0) }, T), 'witness_error_rate')).toMatchObject({
      status: 'failed',
      value: 0.1,
    });
    expect(gate(evaluateGates({ ...healthy, witness: w(0, 1) }, T), 'signature_failures').status).toBe(
      'failed',
    );
    const slow = { pairs: [{ agent: 'a', peer: 'b', state: 'connected', rtt_ms: 250 }] };
    expect(gate(evaluateGates({ ...healthy, pairs: slow }, T), 'rtt_p95_ms')).toMatchObject({
      status: 'failed',
      value: 250,
    });
    expect(gate(evaluateGates({ ...healthy, running: [] }, T), 'agents_healthy').status).toBe('failed');
    // Running again, but brought back by the supervisor: a crashing candidate is not healthy.
    expect(
      gate(evaluateGates({ ...healthy, restarted: [{ agent: 'a', times: 2 }] }, T), 'agents_healthy'),
    ).toMatchObject({ status: 'failed', value: expect.stringContaining('restarted: a 2×') });
    expect(gate(evaluateGates({ ...healthy, restarted: [] }, T), 'agents_healthy').status).toBe('ok');
    expect(gate(evaluateGates({ ...healthy, registered: { ids: [] } }, T), 'agents_registered').status).toBe(
      'failed',
    );
    const logs = { count: 1, first: 'ERROR x' };
    expect(gate(evaluateGates({ ...healthy, log_errors: logs }, T), 'log_errors').status).toBe('failed');
  });

  it('is an error, never a pass, when the witness or signaling does not answer', () => {
    const g = evaluateGates({ ...healthy, witness: down }, T);
    expect(gate(g, 'witness_error_rate')).toMatchObject({ status: 'error', value: null, detail: down.error });
    expect(gate(g, 'signature_failures').status).toBe('error');
    const blind = { error: 'no signaling instance answered' };
    const s = evaluateGates({ ...healthy, registered: blind, pairs: blind }, T);
    expect(['agents_registered', 'connection_success', 'rtt_p95_ms'].map((n) => gate(s, n).status)).toEqual([
      'error',
      'error',
      'error',
    ]);
  });

  it('is inconclusive with no data yet: no events, no peers, pairs still connecting', () => {
    const quiet = evaluateGates({ ...healthy, witness: { total: 0, errors: 0, signature_failures: 0 } }, T);
    expect(gate(quiet, 'witness_error_rate').status).toBe('inconclusive');
    expect(gate(quiet, 'signature_failures').status).toBe('inconclusive');
    expect(gate(evaluateGates({ ...healthy, pairs: { pairs: [] } }, T), 'connection_success').status).toBe(
      'inconclusive',
    );
    const pair = (peer: string, state: string | null) => ({ agent: 'a', peer, state, rtt_ms: null });
    const connecting = { pairs: [pair('b', 'connected'), pair('c', 'connecting'), pair('d', null)] };
    expect(gate(evaluateGates({ ...healthy, pairs: connecting }, T), 'connection_success')).toMatchObject({
      status: 'inconclusive',
      value: 0.333,
    });
    // Even if every pending pair connected, 2 of 4 could not reach 95 %: failed now.
    const lost = { pairs: [...connecting.pairs, pair('e', 'failed')] };
    expect(gate(evaluateGates({ ...healthy, pairs: lost }, T), 'connection_success').status).toBe('failed');
  });
});

describe('analysis rules', () => {
  it('fails at the first failed check by default (failure limit 0), on the fake clock', async () => {
    const broken: Signals = {
      ...healthy,
      pairs: { pairs: [{ agent: 'a', peer: 'b', state: 'failed', rtt_ms: null }] },
    };
    const { outcome } = await window(5, (n) => (n >= 2 ? broken : healthy));
    expect(outcome).toMatchObject({ result: 'failed', gate: { gate: 'connection_success', value: 0 } });
    const tolerant = await window(5, (n) => (n === 2 ? broken : healthy), { ...rules, failure_limit: 1 });
    expect(tolerant.outcome.result).toBe('passed');
  });

  it('counts errors per gate in a row and fails once the consecutive error limit is reached', () => {
    let p = freshProgress();
    const at = '2026-01-01T00:00:00.000Z';
    const blind = evaluateGates({ ...healthy, witness: down }, T);
    for (let i = 0; i < 3; i++) {
      const r = recordCheck(p, checkRecord(at, blind), rules);
      expect(r.verdict).toBeNull();
      p = r.progress;
    }
    expect(p.consecutive_errors.witness_error_rate).toBe(3);
    // One answer resets the count: errors must be consecutive.
    p = recordCheck(p, checkRecord(at, evaluateGates(healthy, T)), rules).progress;
    expect(p.consecutive_errors.witness_error_rate).toBe(0);
    for (let i = 0; i < 3; i++) p = recordCheck(p, checkRecord(at, blind), rules).progress;
    const r = recordCheck(p, checkRecord(at, blind), rules);
    expect(r.verdict).toMatchObject({
      result: 'failed',
      gate: { gate: 'witness_error_rate', status: 'error' },
      reason: expect.stringContaining('4 checks in a row'),
    });
  });

  it('never passes a window in which a required gate never measured: the witness down or silent', async () => {
    // Three checks with the witness down: under the error limit, but the window proves nothing.
    const blind = await window(3, () => ({ ...healthy, witness: down }));
    expect(blind.outcome).toMatchObject({
      result: 'inconclusive',
      gate: { gate: 'witness_error_rate', status: 'error' },
      reason: expect.stringContaining('witness_error_rate, signature_failures never measured'),
    });
    const silent = await window(3, () => ({
      ...healthy,
      witness: { total: 0, errors: 0, signature_failures: 0 },
    }));
    expect(silent.outcome).toMatchObject({ result: 'inconclusive', gate: { status: 'inconclusive' } });
    // Measured once is enough; RTT is not required by default.
    const once = await window(3, (n) => ({
      ...healthy,
      witness: n === 1 ? healthy.witness : down,
      pairs: { pairs: [{ agent: 'a', peer: 'b', state: 'connected', rtt_ms: null }] },
    }));
    expect(once.outcome.result).toBe('passed');
    expect(windowVerdict(freshProgress(), rules)).toMatchObject({ result: 'inconclusive' });
  });

  it('goes on from persisted progress (a resumed canary finishes its window) and acts on a promote', async () => {
    const clock = new FakeClock();
    let evaluated = 0;
    const start = { ...freshProgress(), checks: 4, measured: [...DEFAULT_REQUIRED] };
    const resumed = runAnalysis({
      checks: 5,
      intervalMs: 60_000,
      rules,
      progress: start,
      clock,
      request: async () => undefined,
      evaluate: async () => {
        evaluated += 1;
        return evaluateGates(healthy, T);
      },
      onCheck: () => {},
    });
    for (let i = 0; i < 2; i++) await clock.advance(60_000);
    expect(await resumed).toEqual({ result: 'passed' });
    expect(evaluated).toBe(1);
    let asked: 'promote' | undefined;
    const promoted = runAnalysis({
      checks: 5,
      intervalMs: 60_000,
      rules,
      progress: freshProgress(),
      clock,
      request: async () => asked,
      evaluate: async () => evaluateGates(healthy, T),
      onCheck: () => {},
    });
    await clock.advance(90_000);
    asked = 'promote';
    await clock.advance(1_000);
    expect(await promoted).toEqual({ result: 'promote' });
  });

  it('phases grow by count or percentage and always end with every agent', () => {
    expect(phaseCounts(['1', '25%', '100%'], 3, undefined)).toEqual([1, 3]);
    expect(phaseCounts(['1', '25%', '100%'], 8, undefined)).toEqual([1, 2, 8]);
    expect(phaseCounts(['1', '25%'], 8, 3)).toEqual([3, 8]);
    expect(() => phaseCounts(['one'], 3, undefined)).toThrow(/not a count or a percentage/);
    // A typo is refused, never reshaped into an unanalysed rollout.
    expect(() => phaseCounts(['5', '1'], 3, undefined)).toThrow(/the first step moves all 3 agents/);
    expect(() => phaseCounts(['2', '1'], 3, undefined)).toThrow(
      /"1" is fewer agents than the step before it/,
    );
    expect(() => phaseCounts(['50%', '10%'], 10, undefined)).toThrow(/fewer agents than the step before/);
    expect(() => phaseCounts(['0', '100%'], 3, undefined)).toThrow(/"0" moves no agent/);
    expect(() => phaseCounts(['1'], 3, 3)).toThrow(/--canary-agents 3: the first step moves all 3 agents/);
    // A step past the fleet is the whole fleet, not a shrink at the next one.
    expect(phaseCounts(['1', '5', '100%'], 3, undefined)).toEqual([1, 3]);
    // One agent: the only step is the whole fleet, as before.
    expect(phaseCounts(['1', '100%'], 1, undefined)).toEqual([1]);
  });
});

describe('monitor triggers', () => {
  const conn = (a: string, b: string, state: string) => ({
    event: 'connection_state_changed',
    agent_id: a,
    peer_id: b,
    metadata: { state },
  });
  const ev = (events: Record<string, unknown>[]) => evaluateWindow({ events }, T);
  const status = (g: Measurement[]) => Object.fromEntries(g.map((x) => [x.gate, x.status]));
  const first = (g: Measurement[]) => g.find((x) => x.status === 'failed');
  it('measures the runbook thresholds and the other triggers', () => {
    expect(first(ev([conn('a', 'b', 'connecting'), conn('a', 'b', 'connected')]))).toBeUndefined();
    const filler = Array(40).fill({ event: 'x' });
    expect(first(ev([conn('a', 'b', 'connected'), conn('a', 'c', 'failed'), ...filler]))).toMatchObject({
      gate: 'connection_success',
      value: 0.5,
    });
    expect(first(ev([{ event: 'webrtc_error' }, { event: 'x' }]))).toMatchObject({
      gate: 'error_rate',
      value: 0.5,
    });
    const mem = (mb: number) => ({
      event: 'memory_usage_update',
      agent_id: 'a',
      metadata: { memory_bytes: mb * 2 ** 20 },
    });
    expect(first(ev([mem(100), mem(150), mem(260), ...filler]))).toMatchObject({
      gate: 'memory_growth_mb',
      value: 160,
    });
    expect(first(ev([{ event: 'dtls_validation_failed' }, ...filler]))).toMatchObject({
      gate: 'dtls_failures',
    });
  });

  it('reports an empty window as inconclusive and an unreachable witness as errors, never as healthy', () => {
    expect(status(ev([]))).toEqual({
      error_rate: 'inconclusive',
      connection_success: 'inconclusive',
      memory_growth_mb: 'inconclusive',
      dtls_failures: 'inconclusive',
      signature_failures: 'inconclusive',
    });
    const blind = evaluateWindow(down, T);
    expect(blind.every((g) => g.status === 'error' && g.detail === down.error)).toBe(true);
    const monitorRules = { ...rules, required: MONITOR_REQUIRED };
    let p = freshProgress();
    for (let i = 0; i < 3; i++) p = recordCheck(p, checkRecord('t', blind), monitorRules).progress;
    expect(recordCheck(p, checkRecord('t', blind), monitorRules).verdict?.result).toBe('failed');
    expect(windowVerdict(p, monitorRules).result).toBe('inconclusive');
  });
});

describe('canary names', () => {
  const plan = (stableRef: string, set: Record<string, string>) =>
    buildCanaryPlan(
      {
        stage: undefined,
        canaryAgents: undefined,
        steps: ['1', '100%'],
        monitorMs: 10_000,
        intervalMs: 1_000,
        failureLimit: 0,
        consecutiveErrorLimit: 4,
        optionalGates: [],
        thresholds: DEFAULT_THRESHOLDS,
        freezeOnFailure: false,
        set,
        agentsDir: undefined,
        label: undefined,
      },
      {
        id: 's',
        ref: stableRef,
        deployment_id: 's',
        config_hash: 'h',
        created_at: '2026-12-07T00:00:00.000Z',
        processes: [],
        agents: ['a', 'b'],
        agent_specs: [],
      },
      'cafe',
      0,
      'ab',
    ).candidate.ref;
  it('names a config-only candidate by its changes, the same every time, never stacking suffixes', () => {
    const once = plan('v2', { AGENT_RECONNECT_MAX_MS: '9000' });
    expect(once).toMatch(/^v2\+config-[0-9a-f]{8}$/);
    expect(plan('v2', { AGENT_RECONNECT_MAX_MS: '9000' })).toBe(once);
    expect(plan('v2', { AGENT_RECONNECT_MAX_MS: '8000' })).not.toBe(once);
    // A canary of a canary: the stable's own suffix is replaced.
    expect(plan(once, { AGENT_RECONNECT_MAX_MS: '8000' })).toMatch(/^v2\+config-[0-9a-f]{8}$/);
    // A secret's value does not enter the name.
    expect(plan('v2', { TURN_PASSWORD: 'one' })).toBe(plan('v2', { TURN_PASSWORD: 'two' }));
  });
});

describe('rollback target', () => {
  const rel = (id: string, outcome: Release['outcome'], ref = id): Release => ({
    id,
    ref,
    deployment_id: id,
    config_hash: 'h',
    created_at: id,
    processes: [],
    agents: [],
    outcome,
    agent_specs: [],
  });
  it('is the newest usable older release, or the named one; none is a clear refusal', () => {
    const all = [rel('1', 'deployed'), rel('2', 'failed'), rel('3', 'deployed')];
    expect(chooseTarget(all, all[2]!, undefined).id).toBe('1');
    expect(chooseTarget(all, all[2]!, '1').id).toBe('1');
    expect(() => chooseTarget(all.slice(0, 1), all[0]!, undefined)).toThrow(/the only one recorded/);
    // Back at the oldest: the others are newer, not absent.
    expect(() => chooseTarget(all, all[0]!, undefined)).toThrow(
      /none of the 2 other recorded releases is older than 1 and ran well/,
    );
    expect(() => chooseTarget(all, all[2]!, 'nope')).toThrow(/no release nope/);
  });

  it('by a name several releases share: the newest that ran well; a failed canary only by its id', () => {
    // v2 deployed, then a config-only canary that failed under the same name.
    const all = [
      rel('1', 'deployed', 'v1'),
      rel('2', 'deployed', 'v2'),
      rel('3', 'failed', 'v2'),
      rel('4', 'deployed', 'v3'),
    ];
    expect(chooseTarget(all, all[3]!, 'v2').id).toBe('2');
    const onlyBad = [rel('1', 'deployed', 'v1'), rel('3', 'failed', 'v2'), rel('4', 'deployed', 'v3')];
    expect(() => chooseTarget(onlyBad, onlyBad[2]!, 'v2')).toThrow(
      /v2 names only release that was not kept: 3 \(failed\)/,
    );
    expect(chooseTarget(onlyBad, onlyBad[2]!, '3').id).toBe('3');
  });
});

describe('release records', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifmesh-test-rollout-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const spec = (id: string, env: Record<string, string>): AgentSpec => ({
    agent_id: id,
    config: `/c/${id}.json`,
    signaling: ['ws://127.0.0.1:1'],
    env,
    cwd: '/',
  });
  const release = (id: string, password: string): Release => ({
    id,
    ref: 'v1',
    deployment_id: id,
    config_hash: 'h',
    created_at: id,
    processes: [],
    agents: ['a'],
    agent_specs: [
      spec('a', {
        TURN_PASSWORD: password,
        PAGERDUTY_INTEGRATION_KEY: 'pd-key',
        ICE_TRANSPORT_POLICY: 'relay',
      }),
    ],
  });

  it('are 0600 and hold secrets only as names, each release its own value', async () => {
    await recordRelease(openStateDir(dir), release('r1', 'first-pass'));
    await recordRelease(openStateDir(dir), release('r2', 'second-pass'));
    const p = openStateDir(dir);
    for (const f of [p.releaseFile('r1'), p.releaseFile('r2'), p.currentRelease])
      expect(statSync(f).mode & 0o777).toBe(0o600);
    const text = readFileSync(p.releaseFile('r1'), 'utf8') + readFileSync(p.releaseFile('r2'), 'utf8');
    for (const secret of ['first-pass', 'second-pass', 'pd-key']) expect(text).not.toContain(secret);
    const r1 = (await readRelease(openStateDir(dir), 'r1'))!;
    expect(r1.agent_specs![0]).toMatchObject({
      env: { ICE_TRANSPORT_POLICY: 'relay' },
      secret_env: { TURN_PASSWORD: 'release:r1:TURN_PASSWORD' },
    });
    expect(specEnv(openStateDir(dir), r1.agent_specs![0]!)).toEqual({
      ICE_TRANSPORT_POLICY: 'relay',
      TURN_PASSWORD: 'first-pass',
      PAGERDUTY_INTEGRATION_KEY: 'pd-key',
    });
    expect(
      specEnv(openStateDir(dir), (await currentRelease(openStateDir(dir)))!.agent_specs![0]!).TURN_PASSWORD,
    ).toBe('second-pass');
  });

  it('a corrupt record is an error naming the file; a lost secret is an error naming the key', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(openStateDir(dir).releaseFile('bad'), '{"id":');
    await expect(readRelease(openStateDir(dir), 'bad')).rejects.toThrow(/bad\.json is corrupted/);
    rmSync(openStateDir(dir).releaseFile('bad'));
    const lost = { ...spec('a', {}), secret_env: { TURN_PASSWORD: 'release:gone:TURN_PASSWORD' } };
    expect(() => specEnv(openStateDir(dir), lost)).toThrow(/TURN_PASSWORD is not in .*secrets\.json/);
  });
});
