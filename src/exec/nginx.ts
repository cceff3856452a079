// nginx (Debian's `nginx`) in front of signaling instances: least_conn, passive health checks,
// WebSocket upgrade, long read timeouts for idle agent sockets. Runs with its own prefix in the
// state dir, so it never touches the system's nginx.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { unconfiguredEnv } from '../config/load.js';
import { CheckFailedError, UnreachableError } from '../errors.js';
import { writeFileWhole, writeStateJson } from '../state/json-file.js';
import type { Clock } from '../util/clock.js';
import type { Exec } from '../util/exec.js';
import { waitFor } from '../util/wait.js';

export interface NginxTls {
  /** The server certificate and key nginx presents (absolute paths). */
  cert: string;
  key: string;
  /** What nginx verifies the instances' certificates against (their CA, or the system bundle). */
  trusted: string;
  /** The name the instances' certificate must carry, as nginx checks it. */
  upstreamName: string;
}

export interface NginxPlan {
  prefix: string;
  listenPort: number;
  /** Where nginx listens (SIGNALING_HOST); a wildcard listens on every address. Default 127.0.0.1. */
  listenHost?: string;
  /** The instances' address (default 127.0.0.1). */
  upstreamHost?: string;
  upstreams: number[];
  /**
   * Hot standbys (nginx `backup`): used only while every upstream is down. Without a shared
   * registry the instances must not split the mesh, so one is active and the rest wait here.
   */
  backups?: number[];
  /** `server_name`: the public host name agents dial; `_` (any) when none is configured. */
  serverName?: string;
  /** https/wss on both sides: clients to nginx, and nginx to the instances (verified). */
  tls?: NginxTls | undefined;
  /**
   * Its error and access logs; default error.log and access.log in `prefix`. A fleet's go to its
   * logs directory as `<name>.log` and `<name>-access.log`: `ifmesh logs` reads them and
   * maintenance's logrotate rotates them with the rest.
   */
  errorLog?: string;
  accessLog?: string;
}

/** A host as nginx writes it in `listen` and `server`: IPv6 literals in brackets. */
const hostPort = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

function listenLine(p: NginxPlan): string {
  const host = p.listenHost ?? '127.0.0.1';
  const at = host === '0.0.0.0' || host === '' ? String(p.listenPort) : hostPort(host, p.listenPort);
  return `listen ${at}${p.tls ? ' ssl' : ''};`;
}

// The runbook's load balancer (failover guide, "Automatic Recovery with Load Balancer"): 5 s to
// connect, an hour of idle read and send for agent WebSockets.
const TIMEOUTS = `proxy_connect_timeout 5s;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;`;

export function nginxConfig(p: NginxPlan): string {
  const up = p.upstreamHost ?? '127.0.0.1';
  const scheme = p.tls ? 'https' : 'http';
  const tls = p.tls
    ? `
    ssl_certificate ${p.tls.cert};
    ssl_certificate_key ${p.tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:ifmesh_ssl:1m;
    # nginx to the instances is TLS too, and verified: never a blind re-encryption.
    proxy_ssl_verify on;
    proxy_ssl_verify_depth 4;
    proxy_ssl_trusted_certificate ${p.tls.trusted};
    proxy_ssl_name ${p.tls.upstreamName};
    proxy_ssl_server_name on;
    proxy_ssl_protocols TLSv1.2 TLSv1.3;`
    : '';
  return `# written by ifmesh deploy; changes are overwritten
worker_processes 1;
# After a reload the old worker keeps its agent WebSockets open until they close by themselves, with
# the upstream list it started with; bounded here, its agents reconnect through the new worker.
worker_shutdown_timeout 30s;
pid ${path.join(p.prefix, 'nginx.pid')};
error_log ${p.errorLog ?? path.join(p.prefix, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log ${p.accessLog ?? path.join(p.prefix, 'access.log')};
  client_body_temp_path ${path.join(p.prefix, 'tmp')};
  proxy_temp_path ${path.join(p.prefix, 'tmp')};
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream ifmesh_signaling {
    least_conn;
${p.upstreams.map((port) => `    server ${hostPort(up, port)} max_fails=3 fail_timeout=30s;`).join('\n')}
${(p.backups ?? []).map((port) => `    server ${hostPort(up, port)} backup;`).join('\n')}
  }
  server {
    ${listenLine(p)}
    server_name ${p.serverName || '_'};${tls}
    # The runbook's health probe (curl -sf …/health): answered by a live instance, not by nginx.
    location = /health {
      proxy_pass ${scheme}://ifmesh_signaling;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_connect_timeout 5s;
      proxy_read_timeout 5s;
      proxy_next_upstream error timeout http_502 http_503;
      access_log off;
    }
    location / {
      proxy_pass ${scheme}://ifmesh_signaling;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      ${TIMEOUTS}
      proxy_next_upstream error timeout http_502 http_503;
    }
  }
}
`;
}

/** What applyNginx needs of the context: external programs and time. */
export interface NginxIo {
  exec: Exec;
  clock: Clock;
}

async function run(io: NginxIo, args: string[]): Promise<{ code: number; out: string }> {
  try {
    // The master stays running: it holds none of the starter's configuration (an exported admin key).
    const r = await io.exec('nginx', args, { timeoutMs: 10_000, env: unconfiguredEnv() });
    return { code: r.code ?? 1, out: `${r.stdout}${r.stderr}`.trim() };
  } catch {
    return { code: 127, out: 'nginx: not found' };
  }
}

/** The plan the config in `prefix` was written from (nginx.plan.json), if ifmesh wrote one. */
export function readNginxPlan(prefix: string): NginxPlan | undefined {
  try {
    return JSON.parse(readFileSync(path.join(prefix, 'nginx.plan.json'), 'utf8')) as NginxPlan;
  } catch {
    return undefined;
  }
}

/** The pids holding a TCP socket listening on `port` (from /proc: the inode of each, then who has it open). */
function listeners(port: number): number[] {
  const inodes = new Set<string>();
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] (ADDR:PORT), st is f[3] (0A: LISTEN), inode is f[9].
      if (f[1]?.endsWith(hex) && f[3] === '0A' && f[9]) inodes.add(f[9]);
    }
  }
  if (!inodes.size) return [];
  const pids: number[] = [];
  for (const d of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${d}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link = '';
      try {
        link = readlinkSync(`/proc/${d}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) {
        pids.push(Number(d));
        break;
      }
    }
  }
  return pids;
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
};
const parentOf = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
};

/**
 * nginx workers whose master is gone (killed with SIGKILL: its workers live on, orphaned, and keep
 * the listening socket, so no new nginx can bind the port while they serve the old configuration),
 * holding `port`. Stopped (SIGTERM, SIGKILL after 2 s); returns their pids.
 */
export async function stopOrphanedWorkers(port: number, clock: Clock): Promise<number[]> {
  const orphans = listeners(port).filter(
    (pid) =>
      /^nginx: (worker|cache)/.test(cmdline(pid)) && !/^nginx: master process/.test(cmdline(parentOf(pid))),
  );
  const kill = (sig: NodeJS.Signals) => {
    for (const pid of orphans)
      try {
        process.kill(pid, sig);
      } catch {
        // gone already
      }
  };
  const alive = () => orphans.some((pid) => existsSync(`/proc/${pid}`) && cmdline(pid) !== '');
  kill('SIGTERM');
  if (!(await waitFor(() => !alive(), { timeoutMs: 2_000, intervalMs: 20 }, clock))) {
    kill('SIGKILL');
    await waitFor(() => !alive(), { timeoutMs: 2_000, intervalMs: 20 }, clock);
  }
  return orphans;
}

/**
 * Writes the config, checks it with `nginx -t`, then starts nginx or reloads the running one.
 * nginx daemonizes, so this returns its master pid (from its pid file) for the caller to stop later.
 */
export async function applyNginx(p: NginxPlan, running: boolean, io: NginxIo): Promise<number> {
  mkdirSync(path.join(p.prefix, 'tmp'), { recursive: true });
  for (const log of [p.errorLog, p.accessLog]) if (log) mkdirSync(path.dirname(log), { recursive: true });
  const conf = path.join(p.prefix, 'nginx.conf');
  // Both written whole: a procedure killed while it rewrites them leaves the old pair or the new.
  writeFileWhole(conf, nginxConfig(p));
  // Kept beside it so a later rewrite (failover's promote-backup) changes the upstreams and keeps
  // the rest (TLS, addresses, server_name) rather than parsing the config back.
  writeStateJson(path.join(p.prefix, 'nginx.plan.json'), p);
  const test = await run(io, ['-t', '-p', p.prefix, '-c', conf]);
  if (test.code === 127) throw new UnreachableError('nginx is not installed', 'apt-get install nginx');
  if (test.code !== 0) throw new CheckFailedError(`nginx rejected ${conf}: ${test.out}`);
  // A master killed earlier may have left its workers on the port: a new one could not bind it.
  if (!running) await stopOrphanedWorkers(p.listenPort, io.clock);
  const r = await run(
    io,
    running ? ['-p', p.prefix, '-c', conf, '-s', 'reload'] : ['-p', p.prefix, '-c', conf],
  );
  if (r.code !== 0) throw new CheckFailedError(`nginx ${running ? 'reload' : 'start'} failed: ${r.out}`);
  const pidFile = path.join(p.prefix, 'nginx.pid');
  let pid = 0;
  const written = () => {
    pid = Number(existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : '');
    return pid > 0;
  };
  if (await waitFor(written, { timeoutMs: 5_000, intervalMs: 20 }, io.clock)) return pid;
  throw new CheckFailedError(`nginx started but wrote no pid to ${pidFile}`);
}
