// `ifmesh failover` for people: one verdict line, from one boolean (never "✅ … validated" under a
// FAILED run, nor a failure line under a success), and numbers rounded for reading.
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { CLASSIFICATION } from '../../src/ops/failover/classification.js';
import type { FailoverReport } from '../../src/ops/failover/scenarios.js';
import { SCENARIOS, type ValidationCheck, type ValidationReport } from '../../src/ops/failover/validate.js';
import { renderClassification, renderFailover, renderValidation } from '../../src/ui/failover.js';
import { formatDuration, formatMs, formatPercent } from '../../src/ui/units.js';

const c = new Chalk({ level: 0 });

function report(ok: boolean): FailoverReport {
  return {
    failover_id: 'fo-1',
    scenario: 'A',
    ok,
    recovery: { started_at: '2026-01-01T00:00:00.000Z', restored_at: null, recovery_ms: null },
    steps: [
      { step: 'reload-config', ok: true, detail: 'TURN_SERVERS=turn:127.0.0.1:3479 pushed to 2 agents' },
      { step: 'reconnect-turn-peers', ok: true, detail: '1 agents on relay asked to reconnect' },
      {
        step: 'peers on the replacement',
        ok,
        detail: ok ? '1 agents relayed through turn:127.0.0.1:3479' : 'not seen on turn:127.0.0.1:3479: a-1',
      },
    ],
  };
}

function validation(passed: boolean): ValidationReport {
  const checks: ValidationCheck[] = [
    { name: 'registration', passed: true, detail: '2 agents registered' },
    { name: 'latency', passed, detail: passed ? 'RTT p50 3.2 ms, p95 4.1 ms' : 'no round trip measured' },
  ];
  return { failover_id: 'fo-1', scenario: 'A', passed, checks };
}

/** The lines that read as the run's verdict, whichever way. */
const successLines = (text: string) => text.split('\n').filter((l) => /✅|recovery validated/.test(l));
const failureLines = (text: string) => text.split('\n').filter((l) => /FAILED|NOT validated/.test(l));

describe('failover rendering: one verdict', () => {
  for (const stepsOk of [true, false])
    for (const checksOk of [true, false])
      it(`steps ${stepsOk ? 'ok' : 'failed'}, checks ${checksOk ? 'passed' : 'failed'}`, () => {
        const ok = stepsOk && checksOk;
        const text = renderFailover({ report: report(stepsOk), validation: validation(checksOk), ok }, c);
        expect(successLines(text), text).toHaveLength(ok ? 1 : 0);
        expect(failureLines(text), text).toHaveLength(ok ? 0 : 1);
        // The verdict is the last line, and it names what failed.
        const last = text.split('\n').at(-1)!;
        if (ok) expect(last).toBe('✅ failover fo-1 (scenario A) applied, recovery validated');
        else {
          expect(last).toMatch(/^✗ failover fo-1 \(scenario A\) FAILED \(failed: /);
          if (!stepsOk) expect(last).toContain('peers on the replacement');
          if (!checksOk) expect(last).toContain('latency');
        }
      });

  it('the issue: a failed step under validated checks reads as FAILED only', () => {
    const text = renderFailover({ report: report(false), validation: validation(true), ok: false }, c);
    expect(text).toContain('FAILED');
    expect(text).not.toContain('✅');
    expect(text).not.toMatch(/recovery validated/);
  });

  it('failover validate alone: its verdict follows `passed`', () => {
    for (const passed of [true, false]) {
      const text = renderValidation(validation(passed), c);
      expect(successLines(text), text).toHaveLength(passed ? 1 : 0);
      expect(failureLines(text), text).toHaveLength(passed ? 0 : 1);
    }
  });
});

describe('failover rendering: numbers for people', () => {
  it('rounds milliseconds to one decimal at most, percentages to whole numbers', () => {
    expect(formatMs(3.2058670000114944)).toBe('3.2 ms');
    expect(formatMs(0.04)).toBe('0 ms');
    expect(formatMs(12.96)).toBe('13 ms');
    expect(formatMs(100)).toBe('100 ms');
    expect(formatPercent(5 / 6)).toBe('83 %');
    expect(formatPercent(0.8)).toBe('80 %');
  });

  it('durations in their largest unit: ms, s, min, h', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_340)).toBe('12.3 s');
    expect(formatDuration(5 * 60_000)).toBe('5 min');
    expect(formatDuration(17 * 60_000)).toBe('17 min');
    expect(formatDuration(3_600_000)).toBe('1 h');
  });
});

describe("the failover guide's classification", () => {
  it("has A-E with the guide's words, a target and manual steps for each", () => {
    expect(CLASSIFICATION.map((c) => c.scenario)).toEqual([...SCENARIOS]);
    expect(CLASSIFICATION.map((c) => [c.scope, c.recovery_time, c.manual_intervention])).toEqual([
      ['Per-peer', '5-30s (auto), <5m (manual)', 'Often unnecessary'],
      ['Global', '30s-2m (auto), <5m (manual)', 'May be required'],
      ['Regional', '30s-17m (exponential backoff)', 'Manual intervention needed'],
      ['Global on restart', '<1 hour', 'Required (automated renewal)'],
      ['All peers', '<1 minute', 'Manual incident response'],
    ]);
    expect(CLASSIFICATION.map((c) => c.target_ms)).toEqual([300_000, 300_000, 1_020_000, 3_600_000, 60_000]);
    for (const c of CLASSIFICATION) {
      expect(c.command).toMatch(/^ifmesh failover [a-z]+/);
      expect(c.manual_steps.length).toBeGreaterThan(1);
    }
  });

  it('renders one row per scenario, then its command and numbered steps', () => {
    const text = renderClassification(CLASSIFICATION);
    const rows = text.split('\n').filter((l) => /^ {2}[A-E]: /.test(l));
    expect(rows).toHaveLength(5);
    expect(rows[0]).toMatch(
      /A: TURN Server Failure +Relay servers +Per-peer +5-30s \(auto\), <5m \(manual\) +< 5 min +Often unnecessary$/,
    );
    expect(rows[4]).toMatch(
      /E: SRTP Key Compromise .* All peers +<1 minute +< 1 min +Manual incident response$/,
    );
    expect(text).toContain('A: TURN Server Failure — ifmesh failover turn --failed URL --replacement URL');
    expect(text).toContain(
      '  1. test the replacement TURN server with a real Allocate; a dead one is refused',
    );
  });
});
