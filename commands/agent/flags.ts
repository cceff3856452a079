import type { FlagSpec } from '../../src/cli/define.js';
import type { ConfigFlags } from '../../src/cli/options.js';

export interface AgentFlags extends ConfigFlags {
  id?: string;
  key?: string;
  count?: string;
  prefix: string;
  signaling?: string;
  stun?: string;
  turn?: string;
  turnUser?: string;
  turnPass?: string;
  icePolicy?: string;
  mesh?: string;
  loopback?: boolean;
  iceAddress?: string;
  insecure?: boolean;
  stateDir?: string;
  witness?: string;
  heartbeatTimeout: string;
  healingBase: string;
  json?: boolean;
}

/** The flags `agent run` and `agent swarm` share: where the mesh is, ICE, healing. */
export const AGENT_FLAGS: readonly FlagSpec[] = [
  'config',
  'set',
  'json',
  'signaling',
  { flags: '--stun <urls>', description: 'STUN URLs (default STUN_SERVERS); werift needs a reachable one' },
  { flags: '--turn <urls>', description: 'TURN URLs, most preferred first (default TURN_SERVERS)' },
  { flags: '--turn-user <user>', description: 'TURN username (default TURN_USERNAME)' },
  { flags: '--turn-pass <password>', description: 'TURN password (default TURN_PASSWORD)' },
  { flags: '--ice-policy <policy>', description: 'all or relay (default ICE_TRANSPORT_POLICY)' },
  { flags: '--mesh <name>', description: 'join this named mesh instead of the default one' },
  {
    flags: '--loopback',
    description: 'gather only 127.0.0.1 candidates (single-machine meshes and tests)',
  },
  {
    flags: '--ice-address <list>',
    description:
      'gather host candidates only on these IPv4 addresses or interfaces, comma-separated (default AGENT_ICE_ADDRESSES; empty: all)',
  },
  { flags: '--insecure', description: 'accept a self-signed wss:// certificate' },
  'state-dir',
  'witness',
  {
    flags: '--heartbeat-timeout <duration>',
    description: 'a peer silent this long is partitioned',
    default: '30s',
  },
  {
    flags: '--healing-base <duration>',
    description: 'first reconnection delay when healing (then ×2, 10 attempts)',
    default: '1s',
  },
];
