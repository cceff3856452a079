import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import type { RotationSchedule } from '../../src/ops/keys/schedule.js';
import type { DailyReport } from '../../src/ops/maintenance/daily.js';
import { renderDaily } from '../../src/ui/maintenance.js';

const DAY = 86_400_000;
function daily(key_rotation: RotationSchedule): DailyReport {
  return {
    maintenance_id: 'MAINT-20261206',
    dry_run: false,
    ok: true,
    needs_human: [],
    certificate: null,
    renewal: null,
    key_rotation,
    logs: [],
    logs_total_bytes: 0,
    logrotate: { ok: true, config: '/state/logrotate.conf', output: '' },
    cleanup: { retain_days: 30, ok: true },
    health: { total_agents: 3, active_connections: 6, error_count_24h: 0 },
    signaling: [],
    report_file: '/state/reports/daily-health-20261206.json',
    notice: { status: 'not_needed', severity: null, channels: [] },
  } as unknown as DailyReport;
}
const line = (k: RotationSchedule) =>
  renderDaily(daily(k), new Chalk({ level: 0 }))
    .split('\n')
    .find((l) => l.includes('key rotation'));
const last = (at: string) => ({ at, ok: true }) as RotationSchedule['last'];

describe('maintenance daily: the key rotation line', () => {
  const base = { enabled: true, interval_ms: DAY };
  it('says "due now" for a mesh never rotated, not a date that is this very moment', () => {
    expect(
      line({ ...base, last: null, next_due_at: '2026-12-06T23:00:44.178Z', due: true, overdue: false }),
    ).toBe('   key rotation: never rotated, due now');
  });
  it('gives the next date when not due, and OVERDUE since when overdue', () => {
    expect(
      line({
        ...base,
        last: last('2026-12-06T10:00:00.000Z'),
        next_due_at: '2026-12-07T10:00:00.000Z',
        due: false,
        overdue: false,
      }),
    ).toBe('   key rotation: last 2026-12-06T10:00:00.000Z (completed), next due 2026-12-07T10:00:00.000Z');
    expect(
      line({
        ...base,
        last: last('2026-12-01T10:00:00.000Z'),
        next_due_at: '2026-12-02T10:00:00.000Z',
        due: true,
        overdue: true,
      }),
    ).toBe(
      '   key rotation: last 2026-12-01T10:00:00.000Z (completed), due since 2026-12-02T10:00:00.000Z — OVERDUE',
    );
  });
});
