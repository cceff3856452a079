// One interface for every way an incident is announced: PagerDuty (level 1), Slack (level 2) and
// e-mail (level 3, a P1 open over an hour). Each notifier only sends; retries, backoff and the record
// of what was sent live in send.ts, so a failing channel is reported and never stops the procedure.
import type { Dispatcher } from 'undici';

export type Severity = 'P1' | 'P2' | 'P3' | 'P4';
export type Channel = 'pagerduty' | 'slack' | 'email';
/** PagerDuty's event actions; Slack and e-mail say the same thing in words. */
export type NoticeAction = 'trigger' | 'acknowledge' | 'resolve';

export interface IncidentNotice {
  incident_id: string;
  kind: string;
  severity: Severity;
  action: NoticeAction;
  /** Escalation level this notice belongs to (1 PagerDuty, 2 Slack, 3 e-mail). */
  level: number;
  title: string;
  summary: string;
  started_at: string;
  /** Short name → value pairs shown as fields (impact, response time, escalation). */
  details: Record<string, string | number>;
}

export interface Notifier {
  readonly channel: Channel;
  /** Sends once; throws on any failure (the caller retries). */
  send(n: IncidentNotice, io: { dispatcher: Dispatcher; signal?: AbortSignal }): Promise<void>;
}

export interface NotificationResult {
  channel: Channel;
  action: NoticeAction;
  level: number;
  ok: boolean;
  attempts: number;
  at: string;
  error?: string;
}

/** Per-request timeout of every notifier. */
export const NOTIFY_TIMEOUT_MS = 5_000;
