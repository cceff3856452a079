// Numbers for people (src/ui/units.ts): what every human rendering prints for a measurement.

import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { renderCheck } from '../../src/ui/monitoring.js';
import {
  formatBytes,
  formatDuration,
  formatMs,
  formatNumber,
  formatPercent,
  formatQuantity,
} from '../../src/ui/units.js';
import { renderExchange } from '../../src/ui/verify.js';

const c = new Chalk({ level: 0 });

describe('units', () => {
  it('milliseconds: one decimal at most, "-" for nothing measured', () => {
    expect(formatMs(3.2058670000114944)).toBe('3.2 ms');
    expect(formatMs(100)).toBe('100 ms');
    expect(formatMs(null)).toBe('-');
  });

  it('percentages: whole where honest, never 100 % short of it nor 0 % above nothing', () => {
    expect(formatPercent(5 / 6)).toBe('83 %');
    expect(formatPercent(1)).toBe('100 %');
    expect(formatPercent(0)).toBe('0 %');
    expect(formatPercent(0.9995)).toBe('99.95 %');
    expect(formatPercent(0.999_999_9)).toBe('99.999 %');
    expect(formatPercent(0.0004)).toBe('0.04 %');
    expect(formatPercent(0.9985, 2)).toBe('99.85 %');
    expect(formatPercent(undefined)).toBe('-');
  });

  it('durations and sizes in their largest sensible unit', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_340)).toBe('12.3 s');
    expect(formatDuration(300_000)).toBe('5 min');
    expect(formatDuration(86_400_000)).toBe('24 h');
    expect(formatDuration(7 * 86_400_000)).toBe('7 d');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1_536)).toBe('1.5 KiB');
    expect(formatBytes(734_003_200)).toBe('700 MiB');
    expect(formatNumber(0.12345)).toBe('0.12');
  });

  it('a quantity in the unit its report gives', () => {
    expect(formatQuantity(3.2058, 'ms')).toBe('3.2 ms');
    expect(formatQuantity(0.998, 'ratio')).toBe('99.8 %');
    expect(formatQuantity(412.345, 'MiB')).toBe('412.3 MiB');
    expect(formatQuantity(3, 'count')).toBe('3');
    // certificate days: whole days left, as certs check says, never rounded up past the threshold
    expect(formatQuantity(29.6, 'days')).toBe('29 days');
    expect(formatQuantity(6.97, 'days')).toBe('6 days');
    expect(formatQuantity(0.123456, 'cores')).toBe('0.12 cores');
    expect(formatQuantity(null, 'ms')).toBe('-');
  });
});

describe('human renderings print no raw floats', () => {
  const RAW = /\d\.\d{3,}/;

  it('verify --message-exchange', () => {
    const text = renderExchange(
      {
        ok: true,
        agents: 3,
        pairs: 3,
        pings_sent: 300,
        pongs_received: 299,
        delivery_ratio: 299 / 300,
        rtt_ms: { p50: 3.2058670000114944, p95: 7.912345678, max: 12.0001 },
        messages_per_second: 812.3456,
        signature_failures: 0,
        mesh_formed_ms: 1234,
        failures: [],
      } as never,
      c,
    );
    expect(text).not.toMatch(RAW);
    expect(text).toContain('delivered 299/300 (99.67 %), RTT p50 3.2 ms, p95 7.9 ms');
    expect(text).toContain('mesh formed in 1.2 s');
  });

  it('monitoring check: values and thresholds in the same unit', () => {
    const text = renderCheck(
      {
        ok: true,
        alerts: [],
        rows: [
          {
            id: 'a',
            metric: 'Connection success rate',
            value: 0.99873,
            unit: 'ratio',
            threshold: '>= 0.95',
            status: 'ok',
          },
          {
            id: 'b',
            metric: 'RTT P2P (p95)',
            value: 3.2058670000114944,
            unit: 'ms',
            threshold: '<= 200',
            status: 'ok',
          },
        ],
      } as never,
      c,
    );
    expect(text).not.toMatch(RAW);
    expect(text).toMatch(/Connection success rate +99\.9 % +threshold >= 95 %/);
    expect(text).toMatch(/RTT P2P \(p95\) +3\.2 ms +threshold <= 200 ms/);
  });
});
