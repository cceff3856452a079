// The fleet view (STYLE rule 14): what runs where, for every command. Built from the state's process
// records (whatever `up`, `deploy` or a restart started) or, for instances ifmesh did not start, from
// the inventory the operator declares (--signaling, or SIGNALING_URLS / SIGNALING_FRONT_DOOR in the
// env file), then the config's own host and port as the last resort. No command reads endpoints
// anywhere else.

import { httpUrlOf as httpOf, wsUrlOf as wsOf } from '../../clients/signaling.js';
import type { LoadedConfig } from '../../config/load.js';
import { ConfigError } from '../../errors.js';
import { type ProcessRecord, scanProcesses, type UnreadableRecord } from '../../state/processes.js';
import { readSecrets } from '../../state/secrets.js';
import type { StateDir } from '../../state/state-dir.js';
import { runningPid } from './supervisor.js';

export interface FleetInstance {
  name: string;
  /** What agents dial: ws:// or wss://. */
  url: string;
  /** The same server's HTTP API: http:// or https://. */
  http: string;
  /** Recorded and started by ifmesh (restartable), or declared by the operator. */
  managed: boolean;
  pid: number | null;
  running: boolean | null;
  owner: string | null;
}

export interface Fleet {
  state_dir: string;
  /** Where the signaling instances came from. */
  source: 'flag' | 'inventory' | 'records' | 'config';
  signaling: FleetInstance[];
  /** nginx or a load balancer in front of the instances. */
  front_door: { name: string; url: string; http: string } | null;
  witness: { url: string; api_key: string; source: 'flag' | 'config' | 'records' | 'default' };
  stun: string[];
  turn: string[];
  turn_credentials: { username: string; password: string } | null;
  /** The Redis the instances share, from a record or SIGNALING_CLUSTER_URL (may hold a password). */
  redis: string | null;
  admin_token: string | undefined;
  /** Every recorded process, for views that list them. */
  records: ProcessRecord[];
  /** Record files that no longer parse: left out of the fleet above, and named by every command. */
  unreadable: UnreadableRecord[];
}

export interface FleetFlags {
  signaling?: string | undefined;
  witness?: string | undefined;
}

function parseInventory(raw: string, key: string): { name: string; url: string }[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry, i) => {
      const eq = entry.indexOf('=');
      const named = eq > 0 && !entry.slice(0, eq).includes(':');
      const name = named ? entry.slice(0, eq) : `signaling-${i + 1}`;
      const url = named ? entry.slice(eq + 1) : entry;
      if (!/^(wss?|https?):\/\/[^/\s]+/i.test(url))
        throw new ConfigError([
          {
            file: undefined,
            line: undefined,
            key,
            message: `${JSON.stringify(entry)} is not a signaling URL`,
            fix: 'write NAME=wss://HOST:PORT (or ws://, https://, http://), comma-separated',
          },
        ]);
      return { name, url: wsOf(url) };
    });
}

const declared = (name: string, url: string): FleetInstance => ({
  name,
  url,
  http: httpOf(url),
  managed: false,
  pid: null,
  running: null,
  owner: null,
});

const configured = (loaded: LoadedConfig, key: string) => loaded.sources[key]?.kind !== 'default';

/** The fleet of a state directory under a configuration; `flags` override (--signaling, --witness). */
export function loadFleet(state: StateDir, loaded: LoadedConfig, flags: FleetFlags = {}): Fleet {
  const { records, unreadable } = scanProcesses(state);
  const secrets = readSecrets(state);
  const cfg = loaded.config;
  const recorded = records.filter((r) => r.role === 'signaling' && r.url);
  let source: Fleet['source'];
  let signaling: FleetInstance[];
  const fromFlag = flags.signaling;
  if (fromFlag) {
    source = 'flag';
    signaling = parseInventory(fromFlag, '--signaling').map((x) => declared(x.name, x.url));
  } else if (loaded.raw.SIGNALING_URLS) {
    source = 'inventory';
    signaling = parseInventory(loaded.raw.SIGNALING_URLS, 'SIGNALING_URLS').map((x) =>
      declared(x.name, x.url),
    );
  } else if (recorded.length) {
    source = 'records';
    signaling = recorded
      .map((r) => {
        // Unknown (null) when the unit's systemd cannot be asked from here: a service reading its
        // fleet (the witness URL) needs the URLs, not the liveness, and must not fail on it.
        let pid: number | undefined;
        let running: boolean | null;
        try {
          pid = runningPid(state, r);
          running = pid !== undefined;
        } catch {
          running = null;
        }
        return {
          name: r.name,
          url: wsOf(r.url!),
          http: httpOf(r.url!),
          managed: true,
          pid: pid ?? null,
          running,
          owner: r.owner,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  } else {
    source = 'config';
    const host =
      cfg.signalingHost === '0.0.0.0' || cfg.signalingHost === '::' ? '127.0.0.1' : cfg.signalingHost;
    signaling = [
      declared('signaling', `${cfg.signalingTlsCert ? 'wss' : 'ws'}://${host}:${cfg.signalingPort}`),
    ];
  }

  const nginx = records.find((r) => r.role === 'nginx' && r.url);
  const frontUrl = source === 'records' ? nginx?.url : loaded.raw.SIGNALING_FRONT_DOOR || undefined;
  const front_door = frontUrl
    ? { name: source === 'records' ? nginx!.name : 'front-door', url: wsOf(frontUrl), http: httpOf(frontUrl) }
    : null;

  const witnessRec = records.find((r) => r.role === 'witness' && r.url);
  const api_key = configured(loaded, 'IF_WITNESS_API_KEY')
    ? cfg.witnessApiKey
    : (secrets?.witness_api_key ?? '');
  const witness: Fleet['witness'] = flags.witness
    ? { url: flags.witness.replace(/\/api\/(log|events)\/?$/, ''), api_key, source: 'flag' }
    : configured(loaded, 'IF_WITNESS_ENDPOINT')
      ? { url: cfg.witnessUrl, api_key, source: 'config' }
      : witnessRec
        ? { url: witnessRec.url!, api_key, source: 'records' }
        : { url: cfg.witnessUrl, api_key, source: 'default' };

  const coturn = records
    .filter((r) => r.role === 'coturn' && r.port)
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const stun = configured(loaded, 'STUN_SERVERS')
    ? cfg.stunServers.map((u) => u.url)
    : coturn.length
      ? coturn.map((c) => `stun:127.0.0.1:${c.port}`)
      : cfg.stunServers.map((u) => u.url);
  const turnConfigured = configured(loaded, 'TURN_SERVERS');
  const turn = turnConfigured
    ? cfg.turnServers.map((u) => u.url)
    : coturn.map((c) => c.url ?? `turn:127.0.0.1:${c.port}?transport=udp`);
  const turn_credentials = turnConfigured
    ? cfg.turnUsername
      ? { username: cfg.turnUsername, password: cfg.turnPassword }
      : null
    : coturn.length && secrets?.turn_password
      ? { username: 'ifmesh', password: secrets.turn_password }
      : null;

  const redisRec = records.find((r) => r.role === 'redis' && r.url);
  return {
    state_dir: state.root,
    source,
    signaling,
    front_door,
    witness,
    stun,
    turn,
    turn_credentials,
    redis: cfg.signalingClusterUrl || redisRec?.url || null,
    admin_token: cfg.signalingAdminToken || secrets?.admin_token,
    records,
    unreadable,
  };
}

/** The URLs agents dial, in failover order: the front door first, then every instance. */
export function agentSignalingUrls(f: Fleet): string[] {
  return [...(f.front_door ? [f.front_door.url] : []), ...f.signaling.map((s) => s.url)];
}
