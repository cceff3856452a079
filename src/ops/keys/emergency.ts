// The runbook's emergency rotation step 1, "Declare Security Incident", when the operator gave no
// incident id: the incident is declared by `incident security`'s own procedure (src/ops/incident/
// declare.ts, used as is), so it gets a SEC- id, its record, the deploy lock, the witness events,
// the page when notification is on, and tree 4's walk. The rotation then carries its id. These are
// the options `ifmesh incident security` builds from the same configuration and fleet.
import type { LoadedConfig } from '../../config/load.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Fleet } from '../fleet/fleet.js';
import type { IncidentOptions } from '../incident/declare.js';
import { configuredNotifiers } from '../incident/notify/send.js';

export function securityIncidentOptions(o: {
  loaded: LoadedConfig;
  fleet: Fleet;
  state: StateDir;
  notify: boolean;
  witnessToken?: string | undefined;
}): IncidentOptions {
  const c = o.loaded.config;
  const w = o.fleet.witness;
  const signaling = o.fleet.signaling.map((x) => x.http);
  return {
    kind: 'security',
    state: o.state,
    signaling,
    witness: w.url ? { url: w.url, apiKey: w.api_key } : null,
    witnessToken: o.witnessToken,
    notifiers: configuredNotifiers(c),
    // --no-notify turns paging off; otherwise the incident's own rule decides (a P1 pages when a
    // channel is configured).
    notify: o.notify ? undefined : false,
    investigate: false,
    hosts: [...signaling, w.url].filter(Boolean).map((u) => new URL(u).hostname),
    production: c.productionMode,
    allowSelfSigned: c.allowSelfSignedCerts,
    adminToken: o.fleet.admin_token || undefined,
    tlsCert: c.signalingTlsCert,
    tlsKey: c.signalingTlsKey,
  };
}
