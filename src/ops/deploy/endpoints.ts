// Where a deploy's services listen and how they are reached, from the configuration alone:
// SIGNALING_HOST binds (loopback only when it says so), SIGNALING_TLS_CERT/KEY make every instance
// and nginx speak https/wss, SIGNALING_PUBLIC_URL is what agents dial and nginx's server_name.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { wsUrlOf } from '../../clients/signaling.js';
import type { MeshConfig } from '../../config/load.js';
import { ConfigError, UsageError } from '../../errors.js';
import type { NginxTls } from '../../exec/nginx.js';

/** Debian's bundle of the system CAs: what nginx verifies the instances with when no CA file is given. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export interface DeployEndpoints {
  /** SIGNALING_HOST: what the instances and nginx bind. */
  bind_host: string;
  /** The address ifmesh dials them on: the bind address, or 127.0.0.1 for a wildcard. */
  dial_host: string;
  scheme: 'ws' | 'wss';
  tls: { cert: string; key: string; ca: string | null } | null;
  /** SIGNALING_PUBLIC_URL as a ws(s):// URL, or null. */
  public_url: string | null;
  /** nginx's server_name: the public URL's host, else SIGNALING_HOST when it is a name, else `_`. */
  server_name: string;
}

const WILDCARDS = new Set(['', '0.0.0.0', '::']);
const isIp = (h: string) => /^[\d.]+$/.test(h) || h.includes(':');

/** The host a URL dials, as a certificate names it: IPv6 literals without their brackets. */
export const hostOf = (url: string) => new URL(url).hostname.replace(/^\[|\]$/g, '');

/** A host in a URL: IPv6 literals in brackets. */
export const urlHost = (h: string) => (h.includes(':') ? `[${h}]` : h);

/** Pure: the endpoints of a deploy under `c`, `caFile` being --ca / IFMESH_CA_FILE. */
export function planEndpoints(c: MeshConfig, caFile: string | undefined): DeployEndpoints {
  const cert = c.signalingTlsCert;
  const key = c.signalingTlsKey;
  if (Boolean(cert) !== Boolean(key)) {
    const [set, missing] = cert
      ? ['SIGNALING_TLS_CERT', 'SIGNALING_TLS_KEY']
      : ['SIGNALING_TLS_KEY', 'SIGNALING_TLS_CERT'];
    throw new ConfigError([
      {
        file: undefined,
        line: undefined,
        key: missing,
        message: `is empty while ${set} is set: TLS needs both`,
        fix: `set ${missing} to the PEM file's path, or unset ${set} to serve plain ws://`,
      },
    ]);
  }
  const bind = c.signalingHost;
  const publicUrl = c.signalingPublicUrl ? wsUrlOf(c.signalingPublicUrl) : null;
  const publicHost = publicUrl ? hostOf(publicUrl) : null;
  return {
    bind_host: bind || '0.0.0.0',
    dial_host: WILDCARDS.has(bind) ? '127.0.0.1' : bind,
    scheme: cert ? 'wss' : 'ws',
    tls: cert && key ? { cert, key, ca: caFile ?? null } : null,
    public_url: publicUrl,
    server_name: publicHost ?? (WILDCARDS.has(bind) || isIp(bind) ? '_' : bind),
  };
}

/** The hosts a deploy's clients dial: its public URL's (agents through nginx) and the instances'. */
export function endpointHosts(e: DeployEndpoints): string[] {
  const hosts = [e.dial_host];
  if (e.public_url) hosts.unshift(hostOf(e.public_url));
  return [...new Set(hosts)];
}

/**
 * What nginx needs to speak TLS to clients and, verified, to the instances. nginx checks an
 * upstream certificate by DNS name only, so it is told a name the instances' certificate (the same
 * file) carries: the public host, else the certificate's first DNS name.
 */
export function nginxTls(e: DeployEndpoints): NginxTls | undefined {
  if (!e.tls) return undefined;
  // An address is no name to nginx: with SIGNALING_PUBLIC_URL=wss://127.0.0.1:… it checked the
  // certificate for a DNS name "127.0.0.1", and every request through it failed (502).
  const fromPublic = e.server_name !== '_' && !isIp(e.server_name) ? e.server_name : undefined;
  const upstreamName = fromPublic ?? certificateDnsName(e.tls.cert);
  if (!upstreamName)
    throw new UsageError(
      `nginx verifies the instances' certificate by DNS name only, and ${e.tls.cert} names ${e.server_name === '_' ? 'no DNS name' : `${e.server_name}, an address, and no DNS name`}`,
      'add a DNS name to its subjectAltName (DNS:localhost for a fleet on one host, else the host name agents dial) and use that name in SIGNALING_PUBLIC_URL',
    );
  return { cert: e.tls.cert, key: e.tls.key, trusted: e.tls.ca ?? SYSTEM_CA_BUNDLE, upstreamName };
}

/**
 * The first DNS name of a PEM certificate (a wildcard's parent domain prefixed), if it has one; with
 * no DNS name in its subjectAltName, its subject's CN when that is a host name (OpenSSL, and so
 * nginx, match the CN then).
 */
function certificateDnsName(file: string): string | undefined {
  try {
    const cert = new X509Certificate(readFileSync(file));
    const dns = (cert.subjectAltName ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.startsWith('DNS:'))
      .map((s) => s.slice(4));
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1]?.trim();
    const name = dns[0] ?? (cn && /^[a-z0-9*][a-z0-9.*-]*$/i.test(cn) && !isIp(cn) ? cn : undefined);
    return name?.replace(/^\*\./, 'signaling.');
  } catch {
    return undefined;
  }
}
