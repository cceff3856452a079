/** A parsed STUN/TURN URI (RFC 7064, RFC 7065). */
export interface IceUrl {
  url: string;
  scheme: 'stun' | 'stuns' | 'turn' | 'turns';
  host: string;
  port: number;
  transport: 'udp' | 'tcp' | undefined;
}

const HOSTNAME =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

export function isHost(host: string): boolean {
  return IPV4.test(host) || HOSTNAME.test(host);
}

/** Returns the parsed URL or a message saying what is wrong (without echoing credentials). */
export function parseIceUrl(text: string, allowed: ReadonlyArray<IceUrl['scheme']>): IceUrl | string {
  const m = /^([a-z]+):(.*)$/i.exec(text);
  if (!m) return `"${text}" has no scheme; expected ${allowed.map((s) => `${s}:`).join(' or ')}`;
  const scheme = m[1]!.toLowerCase() as IceUrl['scheme'];
  if (!allowed.includes(scheme))
    return `"${text}" must start with ${allowed.map((s) => `${s}:`).join(' or ')}`;
  let rest = m[2]!;
  if (rest.includes('@') || rest.startsWith('//')) {
    return `a ${scheme}: URL takes no user, password or "//" (RFC 7064/7065); put credentials in TURN_USERNAME/TURN_PASSWORD`;
  }
  let transport: IceUrl['transport'];
  const q = rest.indexOf('?');
  if (q >= 0) {
    const query = rest.slice(q + 1);
    rest = rest.slice(0, q);
    if (scheme === 'stun' || scheme === 'stuns')
      return `"${text}": stun: URLs take no ?transport= (RFC 7064)`;
    const t = /^transport=(udp|tcp)$/i.exec(query);
    if (!t) return `"${text}": the only query allowed is ?transport=udp or ?transport=tcp`;
    transport = t[1]!.toLowerCase() as 'udp' | 'tcp';
  }
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) return `"${text}": unterminated [IPv6] address`;
    host = rest.slice(1, end);
    if (!IPV6.test(host) || !host.includes(':')) return `"${text}": [${host}] is not an IPv6 address`;
    const after = rest.slice(end + 1);
    if (after !== '' && !after.startsWith(':')) return `"${text}": expected :port after the IPv6 address`;
    portText = after ? after.slice(1) : undefined;
  } else {
    const parts = rest.split(':');
    if (parts.length > 2) return `"${text}": too many colons (write IPv6 addresses in [brackets])`;
    host = parts[0]!;
    portText = parts[1];
    if (!isHost(host)) return `"${text}": "${host}" is not a host name or IPv4 address`;
  }
  const defaultPort = scheme === 'stuns' || scheme === 'turns' ? 5349 : 3478;
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      return `"${text}": port must be 1-65535`;
    }
    port = Number(portText);
  }
  return { url: text, scheme, host, port, transport };
}
