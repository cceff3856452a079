import type { MeshConfig } from './load.js';

/**
 * Signaling URLs: --signaling (comma-separated) > $IFMESH_SIGNALING_URL > the config's host and
 * port. http(s):// and ws(s):// name the same server; a wildcard listen address means this host.
 */
export function signalingUrls(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  config: MeshConfig,
): string[] {
  const raw = flag ?? env.IFMESH_SIGNALING_URL;
  if (raw) {
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((u) => u.replace(/^http(s?):\/\//i, 'ws$1://'));
  }
  const host =
    config.signalingHost === '0.0.0.0' || config.signalingHost === '::' ? '127.0.0.1' : config.signalingHost;
  return [`${config.signalingTlsCert ? 'wss' : 'ws'}://${host}:${config.signalingPort}`];
}
