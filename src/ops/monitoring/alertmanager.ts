// The Alertmanager half of `ifmesh monitoring export`: where the alert rules' notices go, from the
// same settings incidents page with (docs/configuration.md): critical alerts to PagerDuty's Events
// API v2 (PAGERDUTY_EVENTS_URL, routing key PAGERDUTY_INTEGRATION_KEY), warnings to the Slack
// incoming webhook (SLACK_WEBHOOK_URL). The secrets stay out of alertmanager.yml: each is written to
// its own 0600 file that the configuration names (`routing_key_file`, `api_url_file`), so the
// configuration itself can be read, diffed and reviewed like the rules.
import path from 'node:path';
import { stringify } from 'yaml';
import type { MeshConfig } from '../../config/load.js';

export interface AlertChannels {
  /** PagerDuty Events API v2; null when PAGERDUTY_INTEGRATION_KEY is unset. */
  pagerduty: { url: string; routingKey: string } | null;
  /** A Slack incoming webhook; null when SLACK_WEBHOOK_URL is unset. */
  slack: { webhookUrl: string } | null;
}

/** The incident notification settings, read for the alert routing as well: one source for both. */
export function alertChannels(
  c: Pick<MeshConfig, 'pagerdutyEventsUrl' | 'pagerdutyIntegrationKey' | 'slackWebhookUrl'>,
): AlertChannels {
  return {
    pagerduty:
      c.pagerdutyIntegrationKey && c.pagerdutyEventsUrl
        ? { url: c.pagerdutyEventsUrl, routingKey: c.pagerdutyIntegrationKey }
        : null,
    slack: c.slackWebhookUrl ? { webhookUrl: c.slackWebhookUrl } : null,
  };
}

export interface AlertRouting {
  /** Where alerts of each severity go: a receiver name, or null when nothing is configured. */
  critical: 'pagerduty' | 'slack' | null;
  warning: 'slack' | 'pagerduty' | null;
  /** Said in the export report: a severity that reaches nobody, or a fallback taken. */
  warnings: string[];
}

export interface AlertmanagerFiles {
  config: string;
  /** Secret files (0600), by the receiver that reads them. */
  secrets: { file: string; text: string }[];
  routing: AlertRouting;
}

/**
 * Critical alerts page (PagerDuty); warnings go to the team's channel (Slack). A severity whose
 * channel is not configured falls back to the other one rather than reaching nobody; with neither,
 * both go to a receiver without integrations and the report says so.
 */
export function alertRouting(ch: AlertChannels): AlertRouting {
  const warnings: string[] = [];
  const critical = ch.pagerduty ? 'pagerduty' : ch.slack ? 'slack' : null;
  const warning = ch.slack ? 'slack' : ch.pagerduty ? 'pagerduty' : null;
  if (!ch.pagerduty && ch.slack)
    warnings.push('PAGERDUTY_INTEGRATION_KEY is not set: critical alerts go to Slack, nobody is paged');
  if (!ch.slack && ch.pagerduty) warnings.push('SLACK_WEBHOOK_URL is not set: warnings page PagerDuty');
  if (!critical)
    warnings.push(
      'neither PAGERDUTY_INTEGRATION_KEY nor SLACK_WEBHOOK_URL is set: alerts reach nobody (set them and export again)',
    );
  return { critical, warning, warnings };
}

// Alertmanager's templates: the rule's summary and the ifmesh command its annotation names.
const SLACK_TITLE =
  '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}';
const SLACK_TEXT =
  '{{ range .Alerts }}{{ .Annotations.summary }}{{ if .Labels.instance }} ({{ .Labels.instance }}){{ end }}\nHandle with: {{ .Annotations.command }}\n{{ end }}';
const PD_DESCRIPTION = '{{ .CommonLabels.alertname }}: {{ .CommonAnnotations.summary }}';
// The rule's severity is one of PagerDuty's (critical, warning); Alertmanager's default is "error".
const PD_SEVERITY = '{{ if .CommonLabels.severity }}{{ .CommonLabels.severity }}{{ else }}error{{ end }}';

export interface AlertmanagerOptions {
  /** The directory alertmanager.yml is written to; the secrets go to its `secrets/`. */
  dir: string;
  channels: AlertChannels;
  /** How long Alertmanager gathers a group's alerts before its first notice (30 s by default). */
  groupWait?: string | undefined;
}

export function renderAlertmanager(o: AlertmanagerOptions): AlertmanagerFiles {
  const routing = alertRouting(o.channels);
  const secretsDir = path.join(o.dir, 'secrets');
  const secrets: { file: string; text: string }[] = [];
  const receivers: Record<string, unknown>[] = [];
  if (o.channels.pagerduty) {
    const file = path.join(secretsDir, 'pagerduty-routing-key');
    secrets.push({ file, text: o.channels.pagerduty.routingKey });
    receivers.push({
      name: 'pagerduty',
      pagerduty_configs: [
        {
          url: o.channels.pagerduty.url,
          routing_key_file: file,
          send_resolved: true,
          description: PD_DESCRIPTION,
          severity: PD_SEVERITY,
          details: { command: '{{ .CommonAnnotations.command }}' },
        },
      ],
    });
  }
  if (o.channels.slack) {
    const file = path.join(secretsDir, 'slack-webhook-url');
    secrets.push({ file, text: o.channels.slack.webhookUrl });
    receivers.push({
      name: 'slack',
      slack_configs: [{ api_url_file: file, send_resolved: true, title: SLACK_TITLE, text: SLACK_TEXT }],
    });
  }
  // Alertmanager needs a default receiver; with no channel it is one without integrations.
  if (!routing.critical) receivers.push({ name: 'nobody' });
  const route = {
    receiver: routing.warning ?? 'nobody',
    group_by: ['alertname', 'job'],
    group_wait: o.groupWait ?? '30s',
    group_interval: '5m',
    repeat_interval: '4h',
    routes: [
      {
        matchers: ['severity="critical"'],
        receiver: routing.critical ?? 'nobody',
        // A page is repeated sooner than a warning while it stays unresolved.
        repeat_interval: '1h',
      },
      { matchers: ['severity="warning"'], receiver: routing.warning ?? 'nobody' },
    ],
  };
  const config = [
    '# Generated by `ifmesh monitoring export`: critical alerts to PagerDuty, warnings to Slack,',
    '# from PAGERDUTY_EVENTS_URL / PAGERDUTY_INTEGRATION_KEY and SLACK_WEBHOOK_URL. The routing key',
    '# and the webhook URL are secrets: they live in secrets/ (mode 0600), named by *_file below.',
    stringify(
      {
        route,
        // While an instance is down its other alerts say nothing new: the page already went out.
        inhibit_rules: [
          {
            source_matchers: ['severity="critical"'],
            target_matchers: ['severity="warning"'],
            equal: ['instance'],
          },
        ],
        receivers,
      },
      { lineWidth: 0 },
    ),
  ].join('\n');
  return { config, secrets, routing };
}
