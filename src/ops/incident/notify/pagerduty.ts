// PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/overview/): one
// endpoint, `event_action` trigger / acknowledge / resolve, the incident id as `dedup_key` so every
// later action lands on the alert the trigger opened.
import { httpRequest } from '../../../clients/http.js';
import { type IncidentNotice, NOTIFY_TIMEOUT_MS, type Notifier, type Severity } from './types.js';

const PD_SEVERITY: Record<Severity, 'critical' | 'error' | 'warning' | 'info'> = {
  P1: 'critical',
  P2: 'error',
  P3: 'warning',
  P4: 'info',
};

export function pagerdutyBody(
  routingKey: string,
  n: IncidentNotice,
  source: string,
): Record<string, unknown> {
  // `recovered` is a team post only; were it ever sent here it would be an acknowledge, never a new alert.
  const action = n.action === 'recovered' ? 'acknowledge' : n.action;
  const base = { routing_key: routingKey, event_action: action, dedup_key: n.incident_id };
  if (action !== 'trigger') return base;
  return {
    ...base,
    payload: {
      summary: `${n.severity} ${n.title}`.slice(0, 1024),
      source,
      severity: PD_SEVERITY[n.severity],
      timestamp: n.started_at,
      component: 'webrtc-agent-mesh',
      group: 'ifmesh',
      class: n.kind,
      custom_details: {
        incident_id: n.incident_id,
        summary: n.summary,
        level: n.level,
        ...(n.for ? { paged: n.for } : {}),
        ...n.details,
      },
    },
  };
}

export function pagerdutyNotifier(o: { url: string; routingKey: string; source: string }): Notifier {
  return {
    channel: 'pagerduty',
    async send(n, io) {
      const r = await httpRequest(o.url, {
        method: 'POST',
        body: JSON.stringify(pagerdutyBody(o.routingKey, n, o.source)),
        timeoutMs: NOTIFY_TIMEOUT_MS,
        dispatcher: io.dispatcher,
        signal: io.signal,
      });
      // 202 Accepted is the API's success; anything else carries {status, message, errors}.
      if (r.status !== 202) {
        const msg = (r.json as { message?: string } | undefined)?.message ?? r.text.slice(0, 200);
        throw new Error(`PagerDuty answered ${r.status}: ${msg}`);
      }
    },
  };
}
