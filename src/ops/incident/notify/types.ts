// One interface for every way an incident is announced: PagerDuty, Slack and e-mail, each reaching a
// level of the on-call roster (src/config/oncall.ts) or, for Slack, the team's channel (the runbook's
// step 5). Each notifier only sends; retries, backoff and the record of what was sent live in send.ts,
// so a failing channel is reported and never stops the procedure.
import type { Dispatcher } from 'undici';

export type Severity = 'P1' | 'P2' | 'P3' | 'P4';
export type Channel = 'pagerduty' | 'slack' | 'email';
/** PagerDuty's event actions; Slack and e-mail say the same thing in words. `recovered` is a team post. */
export type NoticeAction = 'trigger' | 'acknowledge' | 'resolve' | 'recovered';

export interface IncidentNotice {
  incident_id: string;
  kind: string;
  severity: Severity;
  action: NoticeAction;
  /** The roster level this notice pages (0: a post to the team's channel). */
  level: number;
  title: string;
  summary: string;
  started_at: string;
  /** Short name → value pairs shown as fields (impact, response time, escalation). */
  details: Record<string, string | number>;
  /** Who is paged: "L2 Engineering Lead (Dana)"; absent on team posts. */
  for?: string;
  /** Slack: the mention put first in the message; e-mail: the address (else ALERT_EMAIL). */
  recipient?: string;
  /** A post to this team channel (the runbook's step 5, "#incident-response"), not a page. */
  team_channel?: string;
  /** The runbook's words for the incident in the team post: "WebRTC Agent Mesh Total Outage". */
  headline?: string;
  /** The runbook's Impact field: "Connected agents: 12". */
  impact?: string;
}

export interface Notifier {
  readonly channel: Channel;
  /** Sends once; throws on any failure (the caller retries). */
  send(n: IncidentNotice, io: { dispatcher: Dispatcher; signal?: AbortSignal }): Promise<void>;
}

export interface NotificationResult {
  channel: Channel;
  action: NoticeAction;
  /** The roster level (0: the team's channel). */
  level: number;
  /** Whom it was for: "L1 On-Call Engineer (rotation on-call)" or "#incident-response". */
  to?: string;
  ok: boolean;
  attempts: number;
  at: string;
  error?: string;
}

/** Per-request timeout of every notifier. */
export const NOTIFY_TIMEOUT_MS = 5_000;
