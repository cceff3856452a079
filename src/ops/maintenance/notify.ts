// Maintenance that tells someone: when a cron run finds something for a person, the finding goes to
// the team's channels (Slack and/or e-mail, from SLACK_WEBHOOK_URL, SMTP_URL and ALERT_EMAIL), not
// only to a log file and an exit code. PagerDuty is left out on purpose: nothing maintenance finds is
// a page (an expiring certificate is the runbook's P3, "< 1 hour"); pages are `incident`'s.
// The senders are the incident notifiers (src/ops/incident/notify/), reused with their retries.
import os from 'node:os';
import type { Notifiers } from '../incident/notify/send.js';
import { sendNotice } from '../incident/notify/send.js';
import type { Channel, IncidentNotice, NotificationResult, Severity } from '../incident/notify/types.js';
import type { OpContext } from '../shared.js';

/** The channels a maintenance notice goes to, when configured. */
export const NOTICE_CHANNELS: readonly Channel[] = ['slack', 'email'];
export const NOTICE_KEYS = 'SLACK_WEBHOOK_URL, or SMTP_URL and ALERT_EMAIL';

export interface NoticeOutcome {
  /**
   * sent: every configured channel took it; failed: at least one did not (each result says why);
   * not_configured: something needed a person and there was nobody to tell; not_needed: all well;
   * suppressed: --no-notify; dry_run: nothing is sent on a dry run.
   */
  status: 'sent' | 'failed' | 'not_configured' | 'not_needed' | 'suppressed' | 'dry_run';
  severity: Severity | null;
  channels: NotificationResult[];
  /** What to do when nobody could be told. */
  hint?: string;
}

export interface NoticeIo {
  /** The configured notifiers (configuredNotifiers(config)); only Slack and e-mail are used. */
  notifiers: Notifiers;
  /** false: --no-notify. */
  notify: boolean;
}

export interface MaintenanceNotice {
  /** MAINT-YYYYMMDD, MAINT-W-YYYYMMDD, KEYROT-…: the notice's id in Slack and the mail subject. */
  id: string;
  kind: string;
  /** "ifmesh daily maintenance needs a person". */
  title: string;
  /** P3 when it cannot wait (a certificate about to expire, the mesh down), P4 otherwise. */
  severity: Severity;
  needs: string[];
  started_at: string;
  /** Extra fields: the report file, the command to run again. */
  details?: Record<string, string>;
}

/** One line per finding, numbered, as Slack and the mail show them. */
export function noticeOf(n: MaintenanceNotice): IncidentNotice {
  return {
    incident_id: n.id,
    kind: n.kind,
    severity: n.severity,
    action: 'trigger',
    // Not an incident escalation: level 0 says so in the mail and Slack fields.
    level: 0,
    title: n.title,
    summary:
      n.needs.length === 1
        ? n.needs[0]!
        : `${n.needs.length} things need a person: ${n.needs.map((x, i) => `(${i + 1}) ${x}`).join(' ')}`,
    started_at: n.started_at,
    details: { Host: os.hostname(), ...n.details },
  };
}

/** Sends `n` to every configured channel when it lists something; never throws. */
export async function tellSomeone(
  n: MaintenanceNotice,
  io: NoticeIo & { dryRun?: boolean | undefined },
  ctx: Pick<OpContext, 'clock' | 'dispatcher' | 'signal'>,
): Promise<NoticeOutcome> {
  const outcome = (status: NoticeOutcome['status'], channels: NotificationResult[] = []): NoticeOutcome => ({
    status,
    severity: n.needs.length ? n.severity : null,
    channels,
  });
  if (n.needs.length === 0) return outcome('not_needed');
  if (io.dryRun) return outcome('dry_run');
  if (!io.notify) return outcome('suppressed');
  const notifiers = NOTICE_CHANNELS.map((c) => io.notifiers[c]).filter((x) => x !== undefined);
  if (notifiers.length === 0)
    return {
      ...outcome('not_configured'),
      hint: `set ${NOTICE_KEYS}, in the env file cron reads`,
    };
  const notice = noticeOf(n);
  const channels = await Promise.all(notifiers.map((x) => sendNotice(x, notice, ctx)));
  return outcome(channels.every((c) => c.ok) ? 'sent' : 'failed', channels);
}
