// Slack incoming webhooks (https://api.slack.com/messaging/webhooks): a POST of {text, attachments}
// answered 200 "ok". The webhook URL is a credential, so no message here ever contains it.
import { httpRequest } from '../../../clients/http.js';
import { type IncidentNotice, NOTIFY_TIMEOUT_MS, type Notifier } from './types.js';

const COLOR = { trigger: 'danger', acknowledge: 'warning', resolve: 'good' } as const;

export function slackBody(n: IncidentNotice): Record<string, unknown> {
  const verb = n.action === 'resolve' ? 'RESOLVED' : n.action === 'acknowledge' ? 'ACKNOWLEDGED' : 'INCIDENT';
  return {
    text: `${n.severity} ${verb}: ${n.title}`,
    attachments: [
      {
        color: COLOR[n.action],
        fields: [
          { title: 'Incident ID', value: n.incident_id, short: true },
          { title: 'Severity', value: n.severity, short: true },
          { title: 'Start Time', value: n.started_at, short: true },
          { title: 'Escalation level', value: String(n.level), short: true },
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
      if (r.status !== 200) throw new Error(`Slack answered ${r.status}: ${r.text.slice(0, 200)}`);
    },
  };
}
