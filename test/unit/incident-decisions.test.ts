// The incident's pure decisions on recorded evidence: what it does with tree 4's root cause, the runbook's
// classification table, and when `show --watch` escalates.
import { describe, expect, it } from 'vitest';
import { classify } from '../../src/ops/incident/classify.js';
import { dueEscalation } from '../../src/ops/incident/lifecycle.js';
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
    expect(classify(impact({ agents_affected: 1001 })).level).toBe('P1');
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

describe('automatic escalation', () => {
  const rec = (severity: IncidentRecord['severity'], level: number) =>
    ({
      status: 'open',
      severity,
      escalation_level: level,
      started_at: '2026-01-01T00:00:00.000Z',
    }) as IncidentRecord;
  const at = (min: number) => Date.parse('2026-01-01T00:00:00.000Z') + min * 60_000;
  it('past the response time to the next level; e-mail only for a P1 over an hour', () => {
    expect(dueEscalation(rec('P1', 1), at(5))).toBeUndefined();
    expect(dueEscalation(rec('P1', 1), at(5.1))?.level).toBe(2);
    expect(dueEscalation(rec('P1', 2), at(60))).toBeUndefined();
    expect(dueEscalation(rec('P1', 2), at(61))?.level).toBe(3);
    expect(dueEscalation(rec('P2', 2), at(600))).toBeUndefined();
    expect(dueEscalation(rec('P2', 1), at(16))?.level).toBe(2);
    expect(dueEscalation({ ...rec('P1', 1), status: 'resolved' }, at(600))).toBeUndefined();
  });
});
