import { hostname } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import {
  type ConfigFlags,
  durationFlag,
  intFlag,
  shared,
  withConfigOptions,
  withJson,
} from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { UsageError } from '../src/errors.js';
import { resolveWitness } from '../src/ops/shared.js';
import { serveSignaling } from '../src/ops/signaling/serve.js';
import { resolveState } from '../src/state/state-dir.js';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

interface Flags extends ConfigFlags {
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

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(
    withConfigOptions(
      cmd
        .command('serve')
        .description('run a signaling instance: WebSocket relay and the HTTP API on one port, until SIGTERM')
        .option('--host <addr>', 'address to listen on (default SIGNALING_HOST)')
        .option('--port <n>', 'port (default SIGNALING_PORT, 8443)')
        .option('--env <name>', '"production" enforces the production configuration rules')
        .option('--log-level <level>', 'debug, info, warn or error', 'info')
        .option('--tls-cert <file>', 'PEM certificate: serve wss:// and https://')
        .option('--tls-key <file>', 'PEM private key for --tls-cert')
        .option('--admin-token-file <file>', 'bearer token for /admin/* (default SIGNALING_ADMIN_TOKEN)')
        .option(
          '--instance-id <id>',
          "this instance's name in events and /health",
          `${hostname()}-${process.pid}`,
        )
        .option(
          '--allow-keys <file>',
          'only these agents may register: one `PUBLIC_KEY AGENT_ID` pair per line',
        )
        .option('--allowed-origins <list>', 'comma-separated Origins browser agents may connect from')
        .option('--max-connections-per-ip <n>', 'WebSocket connections one address may hold', '1000')
        .option('--reap-after <duration>', 'terminate sockets that answer no ping for this long', '30s')
        .option('--register-timeout <duration>', 'close sockets that have not registered by then', '10s')
        .option('--headers-timeout <duration>', 'close HTTP connections whose headers take longer', '10s')
        .option(
          '--cluster <url>',
          'redis://HOST:PORT shared with the other instances, without credentials (default SIGNALING_CLUSTER_URL, which may carry them)',
        )
        .option('--cluster-ttl <duration>', 'an instance silent this long leaves the cluster (1s-15s)', '10s')
        .addOption(shared('state-dir'))
        .addOption(shared('witness')),
    ),
  ).action(async (flags: Flags) => {
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
    const loaded = await loadCommandConfig(ctx, { config: flags.config, set });
    const out = io.output(flags);
    for (const w of loaded.warnings) out.warn(w);
    io.claimSignal();
    const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
    await serveSignaling(
      {
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
        log: (lvl, msg, fields) => {
          if (LEVELS[lvl] >= level)
            ctx.stderr.write(
              `${JSON.stringify({ time: new Date().toISOString(), level: lvl, service: 'signaling', msg, ...fields })}\n`,
            );
        },
      },
      (info) => {
        if (flags.json) ctx.stdout.write(`${JSON.stringify(info)}\n`);
        else ctx.stderr.write(`signaling ${info.instance_id} listening on ${info.url} (${info.http_url})\n`);
      },
    );
  });
}
