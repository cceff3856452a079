// Slack incoming webhooks (https://api.slack.com/messaging/webhooks): a POST of {text, attachments}
// answered 200 "ok". Two kinds of message: the runbook's step-5 post to the team's channel
// (#incident-response: id, start, severity, impact, in the runbook's words), and a page of a roster
// level, which puts the level's mention first. The webhook URL is a credential, so no message here
// ever contains it.
import { httpRequest } from '../../../clients/http.js';
import { type IncidentNotice, NOTIFY_TIMEOUT_MS, type Notifier } from './types.js';

const COLOR = { trigger: 'danger', acknowledge: 'warning', resolve: 'good', recovered: 'good' } as const;

/** incident-response-p1-total-outage.sh, step 5, field for field; recovery and resolution say so. */
export function slackTeamBody(n: IncidentNotice): Record<string, unknown> {
  const headline = n.headline ?? n.title;
  const text =
    n.action === 'recovered'
      ? `✅ ${n.severity} INCIDENT AUTO-RECOVERED: ${headline}`
      : n.action === 'resolve'
        ? `✅ ${n.severity} INCIDENT RESOLVED: ${headline}`
        : `🚨 ${n.severity} INCIDENT: ${headline}`;
  return {
    ...(n.team_channel ? { channel: n.team_channel } : {}),
    text,
    attachments: [
      {
        color: COLOR[n.action],
        fields: [
          { title: 'Incident ID', value: n.incident_id },
          { title: 'Start Time', value: n.started_at },
          { title: 'Severity', value: n.severity },
          { title: 'Impact', value: n.impact ?? 'not assessed' },
          ...(n.action === 'trigger' ? [] : [{ title: 'Status', value: n.summary }]),
        ],
      },
    ],
  };
}

export function slackBody(n: IncidentNotice): Record<string, unknown> {
  if (n.team_channel) return slackTeamBody(n);
  const verb = n.action === 'resolve' ? 'RESOLVED' : n.action === 'acknowledge' ? 'ACKNOWLEDGED' : 'INCIDENT';
  return {
    text: `${n.recipient ? `${n.recipient} ` : ''}${n.severity} ${verb}: ${n.title}`,
    attachments: [
      {
        color: COLOR[n.action],
        fields: [
          { title: 'Incident ID', value: n.incident_id, short: true },
          { title: 'Severity', value: n.severity, short: true },
          { title: 'Start Time', value: n.started_at, short: true },
          { title: 'Escalation level', value: String(n.level), short: true },
          ...(n.for ? [{ title: 'Paged', value: n.for, short: false }] : []),
          { title: 'Summary', value: n.summary, short: false },
          ...Object.entries(n.details).map(([title, value]) => ({
            title,
            value: String(value),
            short: true,
          })),
        ],
      },
    ],
  };
}

export function slackNotifier(o: { webhookUrl: string }): Notifier {
  return {
    channel: 'slack',
    async send(n, io) {
      const r = await httpRequest(o.webhookUrl, {
        method: 'POST',
        body: JSON.stringify(slackBody(n)),
        timeoutMs: NOTIFY_TIMEOUT_MS,
        dispatcher: io.dispatcher,
        signal: io.signal,
      });
      // Slack answers 200 "ok"; a Slack-compatible webhook (Mattermost, a relay) may answer 202 or
      // 204. Any 2xx is delivered: taking one for a failure retries it, and posts it again.
      if (r.status < 200 || r.status > 299)
        throw new Error(`Slack answered ${r.status}: ${r.text.slice(0, 200)}`);
    },
  };
}
