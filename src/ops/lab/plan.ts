// The NAT lab's topology as a pure plan: namespaces, addresses, and the ip/nft commands that build
// them (what `lab up --dry-run` prints). Built entirely inside network namespaces named
// `ifmesh-lab-<lab>-*`: every veth is created inside its namespaces (never in the host's), routers
// and the public side hold only connected routes, and no namespace has a link to the host, so
// nothing in the lab can reach outside it. Addresses come from the documentation range
// 203.0.113.0/24 (the "internet") and 10.0.N.0/24 (each NAT's LAN) only.
import { UsageError } from '../../errors.js';

export const NAT_TYPES = ['cone', 'symmetric', 'none'] as const;
export type NatType = (typeof NAT_TYPES)[number];

export interface LabSpec {
  /** The lab's name: namespaces are `ifmesh-lab-<name>-<node>`, so labs do not collide. */
  name: string;
  /** One host per entry, h1 … hN, each behind its own router of this NAT type (none: on the bridge). */
  nats: NatType[];
  /** coturn instances in the public namespace (2 for TURN failover drills). */
  turnServers: number;
}

export interface LabHost {
  name: string;
  namespace: string;
  nat: NatType;
  /** The host's own address (10.0.N.2 behind a NAT, 203.0.113.20N when public). */
  address: string;
  /** Its router's namespace and public (WAN) address; undefined for nat 'none'. */
  router?: { namespace: string; wan: string; lan: string } | undefined;
}

export interface LabTurn {
  name: string;
  /** The first is the relay address; the second lets coturn answer RFC 5780 NAT discovery. */
  addresses: [string, string];
  port: number;
  relayPorts: [number, number];
  url: string;
  stunUrl: string;
}

export interface LabPlan {
  name: string;
  prefix: string;
  public: { namespace: string; bridge: string };
  hosts: LabHost[];
  turn: LabTurn[];
  signaling: { address: string; port: number; url: string };
  witness: { address: string; port: number; url: string };
  /** Every namespace the lab makes, public first. */
  namespaces: string[];
  /** The commands that build it, in order (argv, no shell). */
  commands: string[][];
}

const NAME = /^[a-z0-9][a-z0-9-]{0,19}$/;
export const LAB_PREFIX = 'ifmesh-lab-';

export function labNamespacePrefix(name: string): string {
  return `${LAB_PREFIX}${name}-`;
}

export function checkLabName(name: string): string {
  if (!NAME.test(name))
    throw new UsageError(
      `lab name '${name}' is not 1-20 lowercase letters, digits or dashes`,
      'pass --name like nat1',
    );
  return name;
}

export function parseNats(text: string): NatType[] {
  const nats = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of nats)
    if (!(NAT_TYPES as readonly string[]).includes(n))
      throw new UsageError(`--nat ${n} is not one of ${NAT_TYPES.join(', ')}`, 'e.g. --nat cone,symmetric');
  if (nats.length < 1 || nats.length > 8)
    throw new UsageError(`--nat names ${nats.length} hosts; a lab has 1 to 8`, 'e.g. --nat cone,symmetric');
  return nats as NatType[];
}

/** The nftables ruleset of one router: NAT on its WAN, and a stateful firewall like a home router's. */
export function routerRuleset(nat: 'cone' | 'symmetric'): string {
  // masquerade keeps the source port when it can: one mapping per internal endpoint whatever the
  // destination (endpoint-independent mapping, a port-restricted cone with the firewall below).
  // fully-random picks a new port per connection, so per destination: a symmetric NAT.
  const masquerade = nat === 'symmetric' ? 'masquerade fully-random' : 'masquerade';
  return [
    'add table ip nat',
    'add chain ip nat postrouting { type nat hook postrouting priority srcnat; }',
    `add rule ip nat postrouting oifname "wan" ${masquerade}`,
    'add table ip filter',
    'add chain ip filter forward { type filter hook forward priority filter; policy drop; }',
    'add rule ip filter forward ct state established,related accept',
    'add rule ip filter forward iifname "lan" oifname "wan" accept',
    'add chain ip filter input { type filter hook input priority filter; }',
    'add rule ip filter input iifname "wan" ct state new drop',
  ].join('; ');
}

export function planLab(spec: LabSpec): LabPlan {
  checkLabName(spec.name);
  if (spec.turnServers < 1 || spec.turnServers > 2)
    throw new UsageError(`--turn-servers ${spec.turnServers}: a lab runs 1 or 2 coturns`);
  const prefix = labNamespacePrefix(spec.name);
  const pub = `${prefix}pub`;
  const bridge = 'br0';
  const commands: string[][] = [];
  const ipn = (ns: string, ...args: string[]) => commands.push(['ip', '-n', ns, ...args]);
  const sysctl = (ns: string, ...settings: string[]) =>
    commands.push(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', ...settings]);
  const newNamespace = (ns: string) => {
    commands.push(['ip', 'netns', 'add', ns]);
    // Before any link exists, so no interface ever gets an IPv6 (link-local) address.
    sysctl(ns, 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    ipn(ns, 'link', 'set', 'lo', 'up');
  };

  const turn: LabTurn[] = Array.from({ length: spec.turnServers }, (_, i) => {
    const a = `203.0.113.${10 + 2 * i}`;
    return {
      name: `coturn-${i + 1}`,
      addresses: [a, `203.0.113.${11 + 2 * i}`],
      port: 3478,
      relayPorts: [49152 + i * 1000, 49152 + i * 1000 + 999],
      url: `turn:${a}:3478?transport=udp`,
      stunUrl: `stun:${a}:3478`,
    };
  });
  const services = '203.0.113.20';

  newNamespace(pub);
  ipn(pub, 'link', 'add', bridge, 'type', 'bridge');
  ipn(pub, 'link', 'set', bridge, 'up');
  for (const a of [...turn.flatMap((t) => t.addresses), services])
    ipn(pub, 'addr', 'add', `${a}/24`, 'dev', bridge);

  const hosts: LabHost[] = spec.nats.map((nat, i) => {
    const n = i + 1;
    const ns = `${prefix}h${n}`;
    newNamespace(ns);
    if (nat === 'none') {
      // A public host: straight on the bridge, like a server with its own address.
      const address = `203.0.113.${200 + n}`;
      ipn(ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `h${n}`, 'netns', pub);
      ipn(pub, 'link', 'set', `h${n}`, 'master', bridge, 'up');
      ipn(ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      ipn(ns, 'link', 'set', 'eth0', 'up');
      return { name: `h${n}`, namespace: ns, nat, address };
    }
    const router = `${prefix}r${n}`;
    const wan = `203.0.113.${100 + n}`;
    const lan = `10.0.${n}.1`;
    const address = `10.0.${n}.2`;
    newNamespace(router);
    ipn(router, 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', `r${n}`, 'netns', pub);
    ipn(pub, 'link', 'set', `r${n}`, 'master', bridge, 'up');
    ipn(router, 'addr', 'add', `${wan}/24`, 'dev', 'wan');
    ipn(router, 'link', 'set', 'wan', 'up');
    ipn(router, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ipn(router, 'addr', 'add', `${lan}/24`, 'dev', 'lan');
    ipn(router, 'link', 'set', 'lan', 'up');
    ipn(ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ipn(ns, 'link', 'set', 'eth0', 'up');
    ipn(ns, 'route', 'add', 'default', 'via', lan);
    sysctl(router, 'net.ipv4.ip_forward=1');
    commands.push(['ip', 'netns', 'exec', router, 'nft', routerRuleset(nat)]);
    return { name: `h${n}`, namespace: ns, nat, address, router: { namespace: router, wan, lan } };
  });

  return {
    name: spec.name,
    prefix,
    public: { namespace: pub, bridge },
    hosts,
    turn,
    signaling: { address: services, port: 8443, url: `ws://${services}:8443` },
    witness: { address: services, port: 8080, url: `http://${services}:8080` },
    namespaces: [
      pub,
      ...hosts.flatMap((h) => (h.router ? [h.router.namespace, h.namespace] : [h.namespace])),
    ],
    commands,
  };
}
