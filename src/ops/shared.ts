import type { Context } from '../cli/context.js';
import type { LoadedConfig, MeshConfig } from '../config/load.js';
import type { StateDir } from '../state/state-dir.js';
import { loadFleet } from './fleet/fleet.js';

/** Resolves once `signal` aborts (SIGTERM/SIGINT for a server command). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** `ifmesh signaling serve` arguments for a local instance (up and deploy start them alike). */
export function signalingServeArgs(
  bin: string,
  o: { port: number; instanceId: string; state: StateDir; adminTokenFile?: string; host?: string },
): string[] {
  return [
    bin,
    'signaling',
    'serve',
    '--host',
    o.host ?? '127.0.0.1',
    '--port',
    String(o.port),
    '--instance-id',
    o.instanceId,
    ...(o.adminTokenFile ? ['--admin-token-file', o.adminTokenFile] : []),
    '--state-dir',
    o.state.root,
  ];
}

/** What an op may use of the context: time, cancellation, external programs, HTTP. No stdio. */
export type OpContext = Pick<Context, 'clock' | 'signal' | 'exec' | 'dispatcher' | 'env' | 'cwd' | 'tls'>;

/** Whether `name` is on the PATH. */
export async function hasBinary(ctx: Pick<Context, 'exec'>, name: string): Promise<boolean> {
  const r = await ctx.exec('sh', ['-c', 'command -v "$1"', 'sh', name], { timeoutMs: 5_000 });
  return r.code === 0;
}

/** The configuration with the fleet's witness: --witness > IF_WITNESS_ENDPOINT > the state's witness. */
export function resolveWitness(loaded: LoadedConfig, flag: string | undefined, state: StateDir): MeshConfig {
  const w = loadFleet(state, loaded, { witness: flag }).witness;
  return { ...loaded.config, witnessUrl: w.url, witnessApiKey: w.api_key };
}

/**
 * What to do when no signaling instance answers: a deployed fleet's are brought back by its
 * supervisor or a deploy, a local stack's by `up`; or the command was pointed at the wrong place.
 */
export const NO_INSTANCE_HINT =
  '`ifmesh status` says which are down (a deployed fleet: ifmesh supervise --detach, or ifmesh deploy again; a local stack: ifmesh up), or pass --signaling URL';
