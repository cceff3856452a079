// The runbook's incident index, one entry per kind: its severity, its title, and the runbook's own
// words for it (the PagerDuty description and the Slack text of incident-response-p1-total-outage.sh).
import type { Severity } from './notify/types.js';
import type { IncidentKind } from './store.js';

export const KIND_INFO: Record<
  IncidentKind,
  { severity: Severity; title: string; headline: string; description: string; replaces: string }
> = {
  p1: {
    severity: 'P1',
    title: 'WebRTC Agent Mesh - Total Service Outage',
    // The runbook's words: its PagerDuty description and its Slack text.
    headline: 'WebRTC Agent Mesh Total Outage',
    description: 'WebRTC mesh signaling server is completely unavailable',
    replaces: 'incident-response-p1-total-outage.sh',
  },
  p2: {
    severity: 'P2',
    title: 'WebRTC Agent Mesh - High Latency',
    headline: 'WebRTC Agent Mesh High Latency',
    description: 'RTT >500ms for >30% of connections',
    replaces: 'incident-response-p2-high-latency.sh',
  },
  // The runbook's index: "Security Breach | < 5 min | incident-response-p1-security.sh", a P1.
  security: {
    severity: 'P1',
    title: 'WebRTC Agent Mesh - Security Event',
    headline: 'WebRTC Agent Mesh Security Breach',
    description: 'security event: signature verification failures or suspected key compromise',
    replaces: 'incident-response-p1-security.sh',
  },
  'cert-expiry': {
    severity: 'P3',
    title: 'WebRTC Agent Mesh - Certificate Expiration',
    headline: 'WebRTC Agent Mesh Certificate Expiration',
    description: 'the signaling TLS certificate expires within 7 days',
    replaces: 'incident-response-p3-cert-expiry.sh',
  },
  'turn-failure': {
    severity: 'P2',
    title: 'WebRTC Agent Mesh - TURN Server Failure',
    headline: 'WebRTC Agent Mesh TURN Server Failure',
    description: 'a TURN server does not answer; relayed connections fail',
    replaces: 'incident-response-p2-turn-failure.sh',
  },
};
