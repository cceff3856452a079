import path from 'node:path';
import type { Context } from '../../src/cli/context.js';
import { type ConfigFlags, durationFlag, intFlag } from '../../src/cli/options.js';
import { loadCommandConfig } from '../../src/cli/tls.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { UsageError } from '../../src/errors.js';
import { resolveWitness } from '../../src/ops/shared.js';
import type { ServeSignalingOptions } from '../../src/ops/signaling/serve.js';
import { resolveState } from '../../src/state/state-dir.js';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

export interface ServeFlags extends ConfigFlags {
  host?: string;
  port?: string;
  env?: string;
  logLevel: string;
  tlsCert?: string;
  tlsKey?: string;
  adminTokenFile?: string;
  instanceId?: string;
  allowKeys?: string;
  allowedOrigins?: string;
  maxConnectionsPerIp: string;
  reapAfter: string;
  registerTimeout: string;
  headersTimeout: string;
  cluster?: string;
  clusterTtl: string;
  stateDir?: string;
  witness?: string;
  json?: boolean;
}

/** The flags checked, and the configuration loaded with the keys they set (they beat --set). */
export async function loadServeConfig(
  flags: ServeFlags,
  ctx: Context,
): Promise<{ level: number; loaded: LoadedConfig }> {
  const level = LEVELS[flags.logLevel as keyof typeof LEVELS];
  if (!level) throw new UsageError(`--log-level ${flags.logLevel} is not one of debug, info, warn, error`);
  if (flags.env !== undefined && flags.env !== 'production' && flags.env !== 'development') {
    throw new UsageError(`--env ${flags.env} is not production or development`);
  }
  const set: Record<string, string> = { ...flags.set };
  if (flags.env) set.PRODUCTION_MODE = String(flags.env === 'production');
  if (flags.tlsCert) set.SIGNALING_TLS_CERT = path.resolve(ctx.cwd, flags.tlsCert);
  if (flags.tlsKey) set.SIGNALING_TLS_KEY = path.resolve(ctx.cwd, flags.tlsKey);
  if (flags.host) set.SIGNALING_HOST = flags.host;
  if (flags.cluster !== undefined) {
    // A password in argv is readable by every local user (ps, /proc/<pid>/cmdline).
    if (/\/\/[^/@]*@/.test(flags.cluster))
      throw new UsageError(
        '--cluster must not carry credentials: a command line is visible to every user of the host',
        'set SIGNALING_CLUSTER_URL=redis://USER:PASSWORD@HOST:PORT in the environment or the env file instead',
      );
    set.SIGNALING_CLUSTER_URL = flags.cluster;
  }
  // Port 0 (any free port, for tests and ifmesh up) is not a valid SIGNALING_PORT in the env file.
  if (flags.port && flags.port !== '0') set.SIGNALING_PORT = flags.port;
  return { level, loaded: await loadCommandConfig(ctx, { config: flags.config, set }) };
}

/** serveSignaling's options: the instance as the flags and the configuration describe it. */
export function serveOptions(
  flags: ServeFlags,
  loaded: LoadedConfig,
  ctx: Context,
  log: ServeSignalingOptions['log'],
): ServeSignalingOptions {
  const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
  return {
    config: resolveWitness(loaded, flags.witness, state),
    host: loaded.config.signalingHost,
    port: flags.port === '0' ? 0 : loaded.config.signalingPort,
    instanceId: flags.instanceId!,
    state,
    adminTokenFile: flags.adminTokenFile ? path.resolve(ctx.cwd, flags.adminTokenFile) : undefined,
    allowKeysFile: flags.allowKeys ? path.resolve(ctx.cwd, flags.allowKeys) : undefined,
    allowedOrigins: flags.allowedOrigins
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    maxConnectionsPerIp: intFlag(flags.maxConnectionsPerIp, '--max-connections-per-ip', 1),
    reapAfterMs: durationFlag(flags.reapAfter, '--reap-after', { min: 100 }),
    registerTimeoutMs: durationFlag(flags.registerTimeout, '--register-timeout', { min: 100 }),
    headersTimeoutMs: durationFlag(flags.headersTimeout, '--headers-timeout', { min: 100 }),
    clusterTtlMs: durationFlag(flags.clusterTtl, '--cluster-ttl', { min: 1000, max: 15_000 }),
    clusterSecret: loaded.raw.SIGNALING_CLUSTER_SECRET || undefined,
    signal: ctx.signal,
    dispatcher: ctx.dispatcher,
    log,
  };
}

/** The instance's log: one JSON line on stderr per message at `level` or above. */
export function jsonLog(level: number, ctx: Context): ServeSignalingOptions['log'] {
  return (lvl, msg, fields) => {
    if (LEVELS[lvl] >= level)
      ctx.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), level: lvl, service: 'signaling', msg, ...fields })}\n`,
      );
  };
}
