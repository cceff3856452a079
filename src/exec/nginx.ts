// nginx (Debian's `nginx`) in front of signaling instances: least_conn, passive health checks,
// WebSocket upgrade, long read timeouts for idle agent sockets. Runs with its own prefix in the
// state dir, so it never touches the system's nginx.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CheckFailedError, UnreachableError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { Exec } from '../util/exec.js';
import { waitFor } from '../util/wait.js';

export interface NginxPlan {
  prefix: string;
  listenPort: number;
  upstreams: number[];
  /**
   * Hot standbys (nginx `backup`): used only while every upstream is down. Without a shared
   * registry the instances must not split the mesh, so one is active and the rest wait here.
   */
  backups?: number[];
}

export function nginxConfig(p: NginxPlan): string {
  return `# written by ifmesh deploy; changes are overwritten
worker_processes 1;
pid ${path.join(p.prefix, 'nginx.pid')};
error_log ${path.join(p.prefix, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log ${path.join(p.prefix, 'access.log')};
  client_body_temp_path ${path.join(p.prefix, 'tmp')};
  proxy_temp_path ${path.join(p.prefix, 'tmp')};
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream ifmesh_signaling {
    least_conn;
${p.upstreams.map((port) => `    server 127.0.0.1:${port} max_fails=3 fail_timeout=30s;`).join('\n')}
${(p.backups ?? []).map((port) => `    server 127.0.0.1:${port} backup;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${p.listenPort};
    location / {
      proxy_pass http://ifmesh_signaling;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_connect_timeout 2s;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
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
    const r = await io.exec('nginx', args, { timeoutMs: 10_000 });
    return { code: r.code ?? 1, out: `${r.stdout}${r.stderr}`.trim() };
  } catch {
    return { code: 127, out: 'nginx: not found' };
  }
}

/**
 * Writes the config, checks it with `nginx -t`, then starts nginx or reloads the running one.
 * nginx daemonizes, so this returns its master pid (from its pid file) for the caller to stop later.
 */
export async function applyNginx(p: NginxPlan, running: boolean, io: NginxIo): Promise<number> {
  mkdirSync(path.join(p.prefix, 'tmp'), { recursive: true });
  const conf = path.join(p.prefix, 'nginx.conf');
  writeFileSync(conf, nginxConfig(p));
  const test = await run(io, ['-t', '-p', p.prefix, '-c', conf]);
  if (test.code === 127) throw new UnreachableError('nginx is not installed', 'apt-get install nginx');
  if (test.code !== 0) throw new CheckFailedError(`nginx rejected ${conf}: ${test.out}`);
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
