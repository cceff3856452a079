// The analysis loop on a fake clock (a five-minute window in milliseconds), the pure gates, phases,
// monitor triggers and rollback target choice.
import { describe, expect, it } from 'vitest';
import type { Release } from '../../src/ops/deploy/releases.js';
import { evaluateGates, type GateResult, runAnalysis, type Signals } from '../../src/ops/rollout/analysis.js';
import { phaseCounts } from '../../src/ops/rollout/canary.js';
import { evaluateWindow, MONITOR_DEFAULTS } from '../../src/ops/rollout/monitor.js';
import { chooseTarget } from '../../src/ops/rollout/rollback.js';
import { FakeClock } from '../helpers/clock.js';

const healthy: Signals = {
  agents: ['a'],
  running: ['a'],
  registered: ['a'],
  pairs: [{ agent: 'a', peer: 'b', connected: true, rtt_ms: 3 }],
  log_errors: { count: 0, first: null },
  witness: { total: 40, errors: 1, signature_failures: 0 },
};
const gate = (g: GateResult[], name: string) => g.find((x) => x.gate === name)!;

describe('canary analysis', () => {
  it('runs a 5-minute window of 60 s checks on the fake clock and fails past the failure limit', async () => {
    const clock = new FakeClock();
    const start = clock.now();
    let n = 0;
    const done = runAnalysis({
      checks: 5,
      intervalMs: 60_000,
      failureLimit: 1,
      clock,
      request: async () => undefined,
      evaluate: async () =>
        evaluateGates(
          ++n >= 2 ? { ...healthy, pairs: [{ ...healthy.pairs[0]!, connected: false }] } : healthy,
        ),
      onCheck: () => {},
    });
    for (let i = 0; i < 10; i++) await clock.advance(60_000);
    const r = await done;
    expect(r.result).toBe('failed');
    expect(r.checks.map((c) => c.ok)).toEqual([true, false, false]);
    expect(r.result === 'failed' && r.gate).toMatchObject({ gate: 'connection_success', value: 0 });
    expect(new Date(r.checks.at(-1)!.at).getTime() - start).toBe(180_000);
  });

  it('passes a window of healthy checks, and acts on an operator promote between checks', async () => {
    const clock = new FakeClock();
    const passed = runAnalysis({
      checks: 5,
      intervalMs: 60_000,
      failureLimit: 0,
      clock,
      request: async () => undefined,
      evaluate: async () => evaluateGates(healthy),
      onCheck: () => {},
    });
    for (let i = 0; i < 6; i++) await clock.advance(60_000);
    expect((await passed).result).toBe('passed');
    let asked: 'promote' | undefined;
    const promoted = runAnalysis({
      checks: 5,
      intervalMs: 60_000,
      failureLimit: 0,
      clock,
      request: async () => asked,
      evaluate: async () => evaluateGates(healthy),
      onCheck: () => {},
    });
    await clock.advance(90_000);
    asked = 'promote';
    await clock.advance(1_000);
    const r = await promoted;
    expect(r.result).toBe('promote');
    expect(r.checks).toHaveLength(1);
  });

  it('gates: error rate over 5 %, a signature failure, RTT p95 over its threshold, a dead or unregistered agent', () => {
    expect(evaluateGates(healthy).every((g) => g.ok)).toBe(true);
    expect(
      gate(
        evaluateGates({ ...healthy, witness: { total: 20, errors: 2, signature_failures: 0 } }),
        'witness_error_rate',
      ),
    ).toMatchObject({ ok: false, value: 0.1 });
    expect(
      gate(
        evaluateGates({ ...healthy, witness: { total: 20, errors: 0, signature_failures: 1 } }),
        'signature_failures',
      ).ok,
    ).toBe(false);
    expect(
      gate(evaluateGates({ ...healthy, pairs: [{ ...healthy.pairs[0]!, rtt_ms: 250 }] }), 'rtt_p95_ms'),
    ).toMatchObject({ ok: false, value: 250 });
    expect(gate(evaluateGates({ ...healthy, running: [] }), 'agents_healthy').ok).toBe(false);
    expect(gate(evaluateGates({ ...healthy, registered: [] }), 'agents_registered').ok).toBe(false);
    expect(
      gate(evaluateGates({ ...healthy, log_errors: { count: 1, first: 'ERROR x' } }), 'log_errors').ok,
    ).toBe(false);
  });

  it('phases grow by count or percentage and always end with every agent', () => {
    expect(phaseCounts(['1', '25%', '100%'], 3, undefined)).toEqual([1, 3]);
    expect(phaseCounts(['1', '25%', '100%'], 8, undefined)).toEqual([1, 2, 8]);
    expect(phaseCounts(['1', '25%'], 8, 3)).toEqual([3, 8]);
    expect(() => phaseCounts(['one'], 3, undefined)).toThrow(/not a count or a percentage/);
  });
});

describe('monitor triggers', () => {
  const conn = (a: string, b: string, state: string) => ({
    event: 'connection_state_changed',
    agent_id: a,
    peer_id: b,
    metadata: { state },
  });
  it('computes the runbook thresholds and the other triggers', () => {
    expect(
      evaluateWindow([conn('a', 'b', 'connecting'), conn('a', 'b', 'connected')], MONITOR_DEFAULTS).breach,
    ).toBeNull();
    expect(
      evaluateWindow(
        [conn('a', 'b', 'connected'), conn('a', 'c', 'failed'), ...Array(40).fill({ event: 'x' })],
        MONITOR_DEFAULTS,
      ).breach,
    ).toMatchObject({ trigger: 'connection_success', value: 0.5 });
    expect(
      evaluateWindow([{ event: 'webrtc_error' }, { event: 'x' }], MONITOR_DEFAULTS).breach,
    ).toMatchObject({ trigger: 'error_rate', value: 0.5 });
    const mem = (mb: number) => ({
      event: 'memory_usage_update',
      agent_id: 'a',
      metadata: { memory_bytes: mb * 2 ** 20 },
    });
    expect(
      evaluateWindow([mem(100), mem(150), mem(260), ...Array(40).fill({ event: 'x' })], MONITOR_DEFAULTS)
        .breach,
    ).toMatchObject({ trigger: 'memory_growth_mb', value: 160 });
    expect(
      evaluateWindow(
        [{ event: 'dtls_validation_failed' }, ...Array(40).fill({ event: 'x' })],
        MONITOR_DEFAULTS,
      ).breach,
    ).toMatchObject({ trigger: 'dtls_failures' });
    expect(evaluateWindow([], MONITOR_DEFAULTS).breach).toBeNull();
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
    expect(() => chooseTarget(all.slice(0, 1), all[0]!, undefined)).toThrow(/no previous release/);
    expect(() => chooseTarget(all, all[2]!, 'nope')).toThrow(/no release nope/);
  });
});
