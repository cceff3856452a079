import { hostname } from 'node:os';
import { defineCommand } from '../../src/cli/define.js';
import type { ServeFlags } from './options.js';

export default defineCommand<ServeFlags>({
  path: 'signaling serve',
  summary: 'run a signaling instance: WebSocket relay and the HTTP API on one port, until SIGTERM',
  examples: [
    'ifmesh signaling serve --host 127.0.0.1 --port 8443 --admin-token-file admin.token',
    'ifmesh signaling serve --env production --tls-cert cert.pem --tls-key key.pem --instance-id sig-1',
  ],
  flags: [
    { flags: '--host <addr>', description: 'address to listen on (default SIGNALING_HOST)' },
    { flags: '--port <n>', description: 'port (default SIGNALING_PORT, 8443)' },
    { flags: '--env <name>', description: '"production" enforces the production configuration rules' },
    { flags: '--log-level <level>', description: 'debug, info, warn or error', default: 'info' },
    { flags: '--tls-cert <file>', description: 'PEM certificate: serve wss:// and https://' },
    { flags: '--tls-key <file>', description: 'PEM private key for --tls-cert' },
    {
      flags: '--admin-token-file <file>',
      description: 'bearer token for /admin/* (default SIGNALING_ADMIN_TOKEN)',
    },
    {
      flags: '--instance-id <id>',
      description: "this instance's name in events and /health",
      default: `${hostname()}-${process.pid}`,
    },
    {
      flags: '--allow-keys <file>',
      description: 'only these agents may register: one `PUBLIC_KEY AGENT_ID` pair per line',
    },
    {
      flags: '--allowed-origins <list>',
      description: 'comma-separated Origins browser agents may connect from',
    },
    {
      flags: '--max-connections-per-ip <n>',
      description: 'WebSocket connections one address may hold',
      default: '1000',
    },
    {
      flags: '--reap-after <duration>',
      description: 'terminate sockets that answer no ping for this long',
      default: '30s',
    },
    {
      flags: '--register-timeout <duration>',
      description: 'close sockets that have not registered by then',
      default: '10s',
    },
    {
      flags: '--headers-timeout <duration>',
      description: 'close HTTP connections whose headers take longer',
      default: '10s',
    },
    {
      flags: '--cluster <url>',
      description:
        'redis://HOST:PORT shared with the other instances, without credentials (default SIGNALING_CLUSTER_URL, which may carry them)',
    },
    {
      flags: '--cluster-ttl <duration>',
      description: 'an instance silent this long leaves the cluster (1s-15s)',
      default: '10s',
    },
    'state-dir',
    'witness',
    'config',
    'set',
    'json',
  ],
  async run({ flags, ctx, io, out }) {
    const [{ loadServeConfig, serveOptions, jsonLog }, { serveSignaling }] = await Promise.all([
      import('./options.js'),
      import('../../src/ops/signaling/serve.js'),
    ]);
    // Loaded here, not as a need: --env, --host, --port, --tls-* and --cluster set keys of it.
    const { level, loaded } = await loadServeConfig(flags, ctx);
    for (const w of loaded.warnings) out.warn(w);
    io.claimSignal();
    await serveSignaling(serveOptions(flags, loaded, ctx, jsonLog(level, ctx)), (info) => {
      if (flags.json) ctx.stdout.write(`${JSON.stringify(info)}\n`);
      else ctx.stderr.write(`signaling ${info.instance_id} listening on ${info.url} (${info.http_url})\n`);
    });
  },
});
