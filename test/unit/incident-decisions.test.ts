// The incident's pure decisions on recorded evidence: what it does with tree 4's root cause, the runbook's
// classification table, the on-call roster as configured, and who the schedule pages when.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { defaultRoster, describeLevel, parseOncallLevel } from '../../src/config/oncall.js';
import { CONFIG_KEYS, type KeySpec } from '../../src/config/schema.js';
import { classify } from '../../src/ops/incident/classify.js';
import { ackMinutes, initialEscalation, scheduledPages } from '../../src/ops/incident/schedule.js';
import { verdictOf } from '../../src/ops/incident/security.js';
import type { Impact, IncidentRecord } from '../../src/ops/incident/store.js';

const fail = (peer: string) => ({
  agent_id: 'receiver',
  peer_id: peer,
  metadata: { reason: 'bad_signature' },
});

describe("what the incident does with tree 4's root cause", () => {
  it('watch one, block a repeat offender, escalate failures across peers, pass others on', () => {
    expect(verdictOf(null, { failures: [] })).toEqual({ kind: 'none' });
    expect(verdictOf('single_signature_failure', { failures: [fail('m')] })).toEqual({
      kind: 'watch',
      peer: 'm',
      failures: 1,
    });
    expect(verdictOf('repeated_signature_failures_one_peer', { failures: [fail('m'), fail('m')] })).toEqual({
      kind: 'block',
      peer: 'm',
      failures: 2,
    });
    expect(
      verdictOf('signature_failures_across_peers', { failures: [fail('m'), fail('e'), fail('m')] }),
    ).toEqual({
      kind: 'widespread',
      peers: ['m', 'e'],
      failures: 3,
    });
    expect(verdictOf('self_signed_in_production', { failures: [] })).toEqual({
      kind: 'other',
      root_cause: 'self_signed_in_production',
    });
  });
});

describe('classification (runbook table)', () => {
  const impact = (over: Partial<Impact>): Impact => ({
    instances: [{ url: 'http://127.0.0.1:1', up: true }],
    agents_connected: 3,
    connections: 6,
    failed_connections_5m: 0,
    agents_affected: 0,
    ...over,
  });
  it('P1 when every instance is down or > 1000 affected; P2 > 100; P3 some; P4 none', () => {
    expect(classify(impact({ instances: [{ url: 'x', up: false }] })).level).toBe('P1');
    // A total outage says why it is P1, not the table's ">1000 agents affected".
    expect(
      classify(
        impact({
          instances: [
            { url: 'x', up: false },
            { url: 'y', up: false },
          ],
        }),
      ).description,
    ).toBe('Total service down: none of 2 signaling instances answers');
    // One that answered but could not be read (its certificate, TLS on an http:// URL) runs: no
    // outage, and the counts are a floor until it is read.
    const unread = classify(
      impact({
        instances: [
          { url: 'x', up: false },
          { url: 'y', up: false, answered: true },
        ],
      }),
    );
    expect(unread.level).toBe('P4');
    expect(unread.description).toContain('a floor: 1 signaling instance answered but could not be read');
    expect(classify(impact({ agents_affected: 1001 })).level).toBe('P1');
    expect(classify(impact({ agents_affected: 1001 })).description).toBe(
      'Total service down, >1000 agents affected',
    );
    expect(classify(impact({ agents_affected: 1000 })).level).toBe('P2');
    expect(classify(impact({ agents_affected: 101 })).level).toBe('P2');
    expect(classify(impact({ agents_affected: 100 })).level).toBe('P3');
    expect(classify(impact({ agents_affected: 0 }))).toMatchObject({
      level: 'P4',
      response_time: '24 hours',
      escalation: 'Ticket',
    });
  });
});

describe('the on-call roster (ONCALL_LEVEL_N)', () => {
  it("parses the runbook's Contact Information, and refuses what it cannot page", () => {
    const roster = defaultRoster(CONFIG_KEYS as KeySpec[]);
    expect(roster.map((l) => [describeLevel(l), l.via, l.respond_minutes, l.when, l.severities])).toEqual([
      ['L1 On-Call Engineer (rotation on-call)', [{ channel: 'pagerduty' }], 15, { kind: 'declared' }, null],
      [
        'L2 Engineering Lead',
        [{ channel: 'slack', to: '@webrtc-oncall' }],
        30,
        { kind: 'unavailable', level: 1 },
        null,
      ],
      ['L3 VP Engineering', [{ channel: 'email' }], 60, { kind: 'open_longer', minutes: 60 }, ['P1']],
    ]);
    expect(
      parseOncallLevel(2, 'Lead; person=Dana; via=slack:<!subteam^S1>,email:dana@example.com; respond=20m'),
    ).toMatchObject({
      person: 'Dana',
      via: [
        { channel: 'slack', to: '<!subteam^S1>' },
        { channel: 'email', to: 'dana@example.com' },
      ],
      respond_minutes: 20,
      when: { kind: 'unavailable', level: 1 },
    });
    expect(parseOncallLevel(3, '')).toBeNull();
    expect(parseOncallLevel(1, 'On-Call; via=pager')).toMatch(/channels are pagerduty/);
    expect(parseOncallLevel(1, 'On-Call; via=pagerduty; when=L1 unavailable')).toMatch(/lower level/);
    expect(parseOncallLevel(2, 'Lead; via=slack; when=P1 > soon')).toMatch(/not a duration/);
    expect(parseOncallLevel(2, 'Lead; via=slack; pager=x')).toMatch(/unknown attribute "pager"/);
    expect(parseOncallLevel(2, 'via=slack')).toMatch(/starts with the role/);
  });

  it('the configuration refuses a bad level where it is written, and a level waiting on an empty one', async () => {
    await expect(
      loadConfig({ cwd: '/', env: {}, flags: { ONCALL_LEVEL_2: 'Lead; via=fax' } }),
    ).rejects.toMatchObject({ issues: [expect.objectContaining({ key: 'ONCALL_LEVEL_2', file: '--set' })] });
    await expect(loadConfig({ cwd: '/', env: {}, flags: { ONCALL_LEVEL_1: '' } })).rejects.toMatchObject({
      issues: [
        expect.objectContaining({ key: 'ONCALL_LEVEL_2', message: 'waits on level 1, which is empty' }),
      ],
    });
    const c = await loadConfig({ cwd: '/', env: { ONCALL_LEVEL_3: '' } });
    expect(c.config.oncall.map((l) => l.level)).toEqual([1, 2]);
    expect(c.config.slackIncidentChannel).toBe('#incident-response');
  });
});

describe('the escalation schedule (persisted in the record, driven by any command)', () => {
  const T0 = Date.parse('2026-01-01T00:00:00.000Z');
  const at = (min: number) => new Date(T0 + min * 60_000).toISOString();
  const rec = (severity: IncidentRecord['severity']): IncidentRecord => ({
    id: 'INC-20260101-000000',
    kind: 'p1',
    title: 't',
    severity,
    classification: null,
    status: 'open',
    started_at: at(0),
    trace_id: 't',
    lock_token: null,
    notify: true,
    escalation_level: 0,
    escalation: { ...initialEscalation(defaultRoster(CONFIG_KEYS as KeySpec[])), stopped: null },
    witness_url: null,
    impact: null,
    tree: null,
    actions: [],
    notifications: [],
    next_steps: [],
    findings: {},
  });
  const level = (r: IncidentRecord, n: number) => r.escalation!.levels[n - 1]!;
  const paged = (r: IncidentRecord, n: number, min: number, ackMin: number) =>
    Object.assign(level(r, n), { status: 'paged', paged_at: at(min), ack_due_at: at(min + ackMin) });
  const due = (r: IncidentRecord) => scheduledPages(r).map((p) => [p.level, p.due_at, p.reason]);

  it('L1 at declaration; L2 when L1 has not acknowledged within the shorter of its 15 min and the severity', () => {
    const p1 = rec('P1');
    expect(due(p1)).toEqual([
      [1, at(0), 'paged when the incident is declared'],
      [3, at(60), 'P1 open over 1 h'],
    ]);
    expect(ackMinutes(p1.escalation!.roster[0]!, 'P1')).toBe(5);
    expect(ackMinutes(p1.escalation!.roster[0]!, 'P2')).toBe(15);
    paged(p1, 1, 0, 5);
    expect(due(p1)[0]).toEqual([
      2,
      at(5),
      'L1 On-Call Engineer (rotation on-call) did not acknowledge within 5 min',
    ]);
    // A P2 never pages the VP: "L3 for P1 > 1 h".
    const p2 = rec('P2');
    paged(p2, 1, 0, 15);
    expect(due(p2)).toEqual([[2, at(15), expect.stringContaining('within 15 min')]]);
  });

  it('ack stops escalation for the acked level, not the P1-over-an-hour page', () => {
    const r = rec('P1');
    paged(r, 1, 0, 5);
    Object.assign(level(r, 1), { status: 'acknowledged', acked_at: at(2) });
    expect(due(r)).toEqual([[3, at(60), 'P1 open over 1 h']]);
  });

  it('a level whose page failed is not reached: the next one is due at once, and it is retried', () => {
    const r = rec('P1');
    Object.assign(level(r, 1), { status: 'failed', failed_at: at(0), error: 'pagerduty: not configured' });
    expect(due(r).slice(0, 2)).toEqual([
      [2, at(0), 'L1 On-Call Engineer (rotation on-call) was not reached (pagerduty: not configured)'],
      [1, at(5), 'retry: its last page failed (pagerduty: not configured)'],
    ]);
    // Once someone acknowledged, a failed level is no longer retried.
    Object.assign(level(r, 2), { status: 'acknowledged', acked_at: at(1) });
    expect(due(r)).toEqual([[3, at(60), 'P1 open over 1 h']]);
  });

  it('nothing is scheduled while stopped (paging off, restored, being declared) or once resolved', () => {
    const r = rec('P1');
    r.escalation!.stopped = 'paging is off (--no-notify)';
    expect(due(r)).toEqual([]);
    expect(scheduledPages(r, { declaring: true }).map((p) => p.level)).toEqual([1, 3]);
    expect(due({ ...rec('P1'), status: 'resolved' })).toEqual([]);
  });
});
