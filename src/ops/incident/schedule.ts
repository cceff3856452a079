// The escalation schedule as data (pure): each roster level's condition — paged at declaration, "L1
// unavailable" (its page failed, or it did not acknowledge in time), "P1 > 1h" — read against the
// levels' states in the incident record, giving who is paged next, when and why.
import { describeLevel, describeTarget, type OncallLevel } from '../../config/oncall.js';
import { CLASSIFICATION } from './classify.js';
import type { Severity } from './notify/types.js';
import type { EscalationState, IncidentRecord, LevelState, NextPage } from './store.js';

/** A level whose page failed is paged again this long after, while nobody has acknowledged. */
export const RETRY_FAILED_MS = 5 * 60_000;

const iso = (ms: number) => new Date(ms).toISOString();

export function initialEscalation(roster: OncallLevel[]): EscalationState {
  return {
    roster,
    levels: roster.map((l) => ({
      level: l.level,
      name: describeLevel(l),
      status: 'waiting',
      via: l.via.map(describeTarget),
      paged_at: null,
      ack_due_at: null,
      acked_at: null,
      failed_at: null,
      error: null,
      pages: 0,
    })),
    next: null,
    // Nothing is scheduled until the declaration has paged who it pages and is written whole.
    stopped: 'being declared',
  };
}

/**
 * Minutes a paged level has to acknowledge before it counts as unavailable: its response target, or
 * the incident's response time when that is shorter (a P1's "< 5 min" beats the on-call's 15).
 */
export function ackMinutes(l: Pick<OncallLevel, 'respond_minutes'>, severity: Severity): number {
  return Math.min(l.respond_minutes, CLASSIFICATION[severity].response_minutes);
}

const fmtMinutes = (m: number) => (m >= 60 && m % 60 === 0 ? `${m / 60} h` : `${m} min`);

/** Every page the schedule holds, earliest first. `declaring`: as if the schedule were running. */
export function scheduledPages(rec: IncidentRecord, o: { declaring?: boolean } = {}): NextPage[] {
  const e = rec.escalation;
  if (!e || rec.status !== 'open' || (e.stopped && !o.declaring)) return [];
  const state = (n: number) => e.levels.find((s) => s.level === n);
  const anyAcked = e.levels.some((s) => s.status === 'acknowledged');
  const out: NextPage[] = [];
  for (const l of e.roster) {
    const s = state(l.level);
    if (!s || s.status === 'paged' || s.status === 'acknowledged') continue;
    if (l.severities && !l.severities.includes(rec.severity)) continue;
    const page = (at: number, reason: string) =>
      out.push({ level: l.level, name: s.name, via: s.via, due_at: iso(at), reason });
    if (s.status === 'failed') {
      if (!anyAcked)
        page(Date.parse(s.failed_at!) + RETRY_FAILED_MS, `retry: its last page failed (${s.error})`);
      continue;
    }
    if (l.when.kind === 'declared') page(Date.parse(rec.started_at), 'paged when the incident is declared');
    else if (l.when.kind === 'open_longer')
      page(
        Date.parse(rec.started_at) + l.when.minutes * 60_000,
        `${rec.severity} open over ${fmtMinutes(l.when.minutes)}`,
      );
    else {
      const ref = l.when.level;
      const k = state(ref);
      const kl = e.roster.find((r) => r.level === ref);
      if (k?.status === 'failed') page(Date.parse(k.failed_at!), `${k.name} was not reached (${k.error})`);
      else if (k?.status === 'paged' && kl)
        page(
          Date.parse(k.ack_due_at!),
          `${k.name} did not acknowledge within ${fmtMinutes(ackMinutes(kl, rec.severity))}`,
        );
    }
  }
  return out.sort((a, b) => a.due_at.localeCompare(b.due_at) || a.level - b.level);
}

/** Recomputes `next` from the levels' states. */
export function refreshSchedule(rec: IncidentRecord): void {
  if (!rec.escalation) return;
  rec.escalation.next = scheduledPages(rec)[0] ?? null;
}

/** The lowest level not reached yet (waiting, or its page failed): what `incident escalate` pages. */
export function nextUnreached(rec: IncidentRecord): LevelState | undefined {
  return rec.escalation?.levels.find((s) => s.status === 'waiting' || s.status === 'failed');
}
