// What an incident is run with, built once from the configuration and the fleet view (which alone
// says where signaling, the witness and TURN are): `ifmesh incident …` and any procedure that declares
// an incident of its own (rotate-keys' SEC- incident) use the same options.
import { parseIceUrl } from '../../config/ice-url.js';
import type { LoadedConfig } from '../../config/load.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Fleet } from '../fleet/fleet.js';
import type { IncidentOptions } from './declare.js';
import { incidentIo } from './escalation.js';
import type { IncidentIo } from './events.js';
import type { IncidentKind } from './store.js';

/** The IncidentIo of a configuration and fleet: state dir, witness, notifiers, roster, team channel. */
export function fleetIncidentIo(loaded: LoadedConfig, fleet: Fleet, state: StateDir): IncidentIo {
  const w = fleet.witness;
  return incidentIo(state, loaded.config, w.url ? { url: w.url, apiKey: w.api_key } : null);
}

const hostOf = (url: string): string | undefined => {
  const ice = parseIceUrl(url, ['turn', 'turns', 'stun', 'stuns']);
  if (typeof ice !== 'string') return ice.host;
  try {
    return new URL(url).hostname || undefined;
  } catch {
    return undefined;
  }
};

export function incidentOptions(
  kind: IncidentKind,
  o: {
    loaded: LoadedConfig;
    fleet: Fleet;
    state: StateDir;
    notify?: boolean | undefined;
    investigate?: boolean;
    witnessToken?: string | undefined;
  },
): IncidentOptions {
  const c = o.loaded.config;
  const io = fleetIncidentIo(o.loaded, o.fleet, o.state);
  const signaling = o.fleet.signaling.map((x) => x.http);
  const hosts = [...signaling, io.witness?.url ?? '', ...o.fleet.turn]
    .filter(Boolean)
    .map(hostOf)
    .filter((h): h is string => h !== undefined);
  return {
    ...io,
    kind,
    signaling,
    witnessToken: o.witnessToken,
    notify: o.notify,
    investigate: o.investigate ?? false,
    hosts: [...new Set(hosts)],
    turn: o.fleet.turn,
    turnCredentials: o.fleet.turn_credentials,
    production: c.productionMode,
    allowSelfSigned: c.allowSelfSignedCerts,
    adminToken: o.fleet.admin_token || undefined,
    tlsCert: c.signalingTlsCert,
    tlsKey: c.signalingTlsKey,
    clusterUrl: c.signalingClusterUrl || undefined,
  };
}
