// Sending with retries: each notice is tried up to ATTEMPTS times with exponential backoff on the
// context's clock, and its outcome recorded, whatever it is. Nothing here throws, so a dead Slack or
// PagerDuty never stops an incident procedure; it shows up in the report as not sent.
import type { Dispatcher } from 'undici';
import type { MeshConfig } from '../../../config/load.js';
import type { Clock } from '../../../util/clock.js';
import { emailNotifier } from './email.js';
import { pagerdutyNotifier } from './pagerduty.js';
import { slackNotifier } from './slack.js';
import type { Channel, IncidentNotice, NotificationResult, Notifier } from './types.js';

export const ATTEMPTS = 4;
export const BACKOFF_MS = [1_000, 2_000, 4_000];

export type Notifiers = Partial<Record<Channel, Notifier>>;

/** The notifiers the configuration enables; a channel without its keys is simply absent. */
export function configuredNotifiers(
  c: Pick<
    MeshConfig,
    'pagerdutyEventsUrl' | 'pagerdutyIntegrationKey' | 'slackWebhookUrl' | 'smtpUrl' | 'alertEmail'
  >,
): Notifiers {
  const out: Notifiers = {};
  if (c.pagerdutyIntegrationKey && c.pagerdutyEventsUrl)
    out.pagerduty = pagerdutyNotifier({
      url: c.pagerdutyEventsUrl,
      routingKey: c.pagerdutyIntegrationKey,
      source: 'ifmesh',
    });
  if (c.slackWebhookUrl) out.slack = slackNotifier({ webhookUrl: c.slackWebhookUrl });
  if (c.smtpUrl && c.alertEmail) out.email = emailNotifier({ smtpUrl: c.smtpUrl, to: c.alertEmail });
  return out;
}

/**
 * The notifiers that page the on-call roster: as configuredNotifiers, except that e-mail needs only
 * SMTP_URL, since a level may name its own address (via=email:ADDRESS); ALERT_EMAIL is the default.
 */
export function rosterNotifiers(
  c: Pick<
    MeshConfig,
    'pagerdutyEventsUrl' | 'pagerdutyIntegrationKey' | 'slackWebhookUrl' | 'smtpUrl' | 'alertEmail'
  >,
): Notifiers {
  const out = configuredNotifiers(c);
  if (c.smtpUrl && !out.email) out.email = emailNotifier({ smtpUrl: c.smtpUrl, to: c.alertEmail });
  return out;
}

/** What a channel needs to be enabled, for the report of one that is not. */
export const CHANNEL_KEYS: Record<Channel, string> = {
  pagerduty: 'PAGERDUTY_INTEGRATION_KEY',
  slack: 'SLACK_WEBHOOK_URL',
  email: 'SMTP_URL',
};

export async function sendNotice(
  notifier: Notifier,
  notice: IncidentNotice,
  io: { clock: Clock; dispatcher: Dispatcher; signal?: AbortSignal },
): Promise<NotificationResult> {
  let error = '';
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      await notifier.send(notice, io);
      return result(notifier.channel, notice, io.clock, attempt);
    } catch (err) {
      error = (err as Error).message;
    }
    if (attempt < ATTEMPTS) {
      try {
        await io.clock.sleep(BACKOFF_MS[attempt - 1] ?? BACKOFF_MS.at(-1)!, io.signal);
      } catch {
        return result(notifier.channel, notice, io.clock, attempt, 'interrupted');
      }
    }
  }
  return result(notifier.channel, notice, io.clock, ATTEMPTS, error);
}

function result(
  channel: Channel,
  n: IncidentNotice,
  clock: Clock,
  attempts: number,
  error?: string,
): NotificationResult {
  const to = n.for ?? n.team_channel;
  return {
    channel,
    action: n.action,
    level: n.level,
    ...(to ? { to } : {}),
    ok: error === undefined,
    attempts,
    at: new Date(clock.now()).toISOString(),
    ...(error !== undefined ? { error } : {}),
  };
}
