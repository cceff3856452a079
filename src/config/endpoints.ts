import type { LoadedConfig, MeshConfig } from './load.js';
import { readStack, readStackSecrets, urls } from './local-stack.js';

/**
 * Signaling URLs: --signaling (comma-separated) > $IFMESH_SIGNALING_URL > the local stack in the
 * state dir > the config's host and port. http(s):// and ws(s):// name the same server; a wildcard
 * listen address means this host.
 */
export function signalingUrls(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  config: MeshConfig,
  stateDir?: string,
): string[] {
  const raw = flag ?? env.IFMESH_SIGNALING_URL;
  if (raw) {
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((u) => u.replace(/^http(s?):\/\//i, 'ws$1://'));
  }
  const stack = stateDir ? readStack(stateDir) : undefined;
  if (stack) return urls.signaling(stack);
  const host =
    config.signalingHost === '0.0.0.0' || config.signalingHost === '::' ? '127.0.0.1' : config.signalingHost;
  return [`${config.signalingTlsCert ? 'wss' : 'ws'}://${host}:${config.signalingPort}`];
}

/** IF.witness: --witness > IF_WITNESS_ENDPOINT (environment or env file) > the local stack > default. */
export function witnessEndpoint(
  flag: string | undefined,
  loaded: LoadedConfig,
  stateDir: string,
): { url: string; apiKey: string } {
  const stack = readStack(stateDir);
  const fromConfig = loaded.sources.IF_WITNESS_ENDPOINT?.kind !== 'default';
  const key =
    loaded.sources.IF_WITNESS_API_KEY?.kind !== 'default'
      ? loaded.config.witnessApiKey
      : (readStackSecrets(stateDir)?.witness_api_key ?? '');
  if (flag) return { url: flag.replace(/\/api\/(log|events)\/?$/, ''), apiKey: key };
  if (fromConfig || !stack) return { url: loaded.config.witnessUrl, apiKey: key };
  return { url: urls.witness(stack), apiKey: key };
}

/** STUN from the local stack when neither a flag nor STUN_SERVERS says otherwise. */
export function stackStun(loaded: LoadedConfig, stateDir: string): string | undefined {
  if (loaded.sources.STUN_SERVERS?.kind !== 'default') return undefined;
  const stack = readStack(stateDir);
  return stack && stack.coturn.length ? urls.stun(stack)[0] : undefined;
}
