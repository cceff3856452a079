// What every walk notes beside its tree: the signaling instances it looked at that are not serving.
// A tree reads the instances that answer, so one dead instance out of two left no trace in the
// latency, packet-loss and memory walks, and tree 1 only asks when its agent is not registered: the
// drill's killed instance (its supervisor dead too) went by as "No fault found", exit 0.
import { PLAIN_HTTP_TO_TLS, UNVERIFIED_CERTIFICATE } from '../../clients/http.js';
import type { InstanceHealth } from './evidence.js';

export type FindingId = 'signaling_down' | 'signaling_url_plain_http' | 'signaling_certificate_untrusted';

export interface Finding {
  id: FindingId;
  title: string;
  instances: { url: string; error: string | null }[];
  actions: string[];
}

/** What to do for each finding; tree 1's leaves of the same root cause say the same. */
export const FINDING_ACTIONS: Record<FindingId, string[]> = {
  signaling_down: [
    'Restart the recorded dead instances (the P1 procedure): ifmesh incident p1',
    'See which instances run and why one stopped: ifmesh status, then ifmesh logs NAME',
  ],
  // Such an instance runs: restarting or failing it over would not help, the URL would.
  signaling_url_plain_http: [
    'The instance runs and speaks TLS: use https:// (wss:// for agents) in --signaling or SIGNALING_URLS, then check again: ifmesh status',
  ],
  signaling_certificate_untrusted: [
    "Trust the CA that issued it: set IFMESH_CA_FILE to the fleet's CA file (or pass --ca FILE)",
    'See the certificate the instances serve: ifmesh certs check',
  ],
};

const entry = (i: InstanceHealth) => ({
  url: i.url,
  error: i.answered?.fix ? `${i.error ?? ''} (${i.answered.fix})` : (i.error ?? `/health: ${i.status}`),
});

/** The instances that are not serving, grouped by what to do about them (none: no finding). */
export function instanceFindings(health: InstanceHealth[]): Finding[] {
  const notUp = health.filter((h) => !h.up);
  const down = notUp.filter((h) => !h.answered);
  const groups: [FindingId, InstanceHealth[], string][] = [
    [
      'signaling_down',
      down,
      down.every((h) => h.status === null) ? 'do not answer' : 'are down (no answer, or /health says down)',
    ],
    [
      'signaling_url_plain_http',
      notUp.filter((h) => h.answered?.code === PLAIN_HTTP_TO_TLS),
      'speak TLS on an http:// URL: the URL is wrong, use https://',
    ],
    [
      'signaling_certificate_untrusted',
      notUp.filter((h) => h.answered?.code === UNVERIFIED_CERTIFICATE),
      'answer with a certificate this command does not trust',
    ],
  ];
  return groups
    .filter(([, of]) => of.length > 0)
    .map(([id, of, what]) => ({
      id,
      title: `${of.length} of ${health.length} signaling instances ${what}: ${of.map((i) => i.url).join(', ')}`,
      instances: of.map(entry),
      actions: FINDING_ACTIONS[id],
    }));
}
