import { statSync } from 'node:fs';
import path from 'node:path';
import { httpRequest } from '../../clients/http.js';
import { pingRedis } from '../../exec/redis.js';
import { type SignalingMode, signalingMode } from './signaling-topology.js';
import { httpHealthy, readStack, tcpOpen, urls } from './stack.js';
import { Supervisor } from './supervisor.js';
import { STOP_ORDER } from './up.js';

export interface ComponentStatus {
  name: string;
  pid: number | null;
  running: boolean;
  healthy: boolean;
  url: string | null;
  uptime_s: number | null;
  log: string;
}

export interface StatusReport {
  state_dir: string;
  exists: boolean;
  components: ComponentStatus[];
  endpoints: {
    witness: string;
    signaling: string[];
    signaling_http: string[];
    nginx: string | null;
    stun: string[];
    turn: string[];
  } | null;
  mesh: { agents: number; connected: number } | null;
  /** "redis": instances share one mesh; "standby": one active, the others hot standbys. */
  signaling_mode: SignalingMode | null;
  healthy: boolean;
}

export async function status(stateDir: string): Promise<StatusReport> {
  const s = readStack(stateDir);
  if (!s)
    return {
      state_dir: stateDir,
      exists: false,
      components: [],
      endpoints: null,
      mesh: null,
      signaling_mode: null,
      healthy: false,
    };
  const sup = new Supervisor(stateDir);
  const urlOf = (name: string): string | null => {
    if (name === 'witness') return urls.witness(s);
    const sig = s.signaling.find((x) => x.name === name);
    if (sig) return `ws://127.0.0.1:${sig.port}`;
    if (name === 'nginx') return urls.nginx(s);
    if (name === 'redis' && s.redis) return `redis://127.0.0.1:${s.redis.port}`;
    const c = s.coturn.find((x) => x.name === name);
    return c ? `turn:127.0.0.1:${c.port}?transport=udp` : null;
  };
  const components: ComponentStatus[] = [];
  for (const name of [...STOP_ORDER(s)].reverse()) {
    const pid = sup.running(name) ?? null;
    const url = urlOf(name);
    let healthy = false;
    if (pid !== null) {
      if (name === 'witness') healthy = await httpHealthy(url!);
      else if (name.startsWith('signaling-')) healthy = await httpHealthy(url!.replace('ws://', 'http://'));
      else if (name.startsWith('coturn-'))
        healthy = await tcpOpen(s.coturn.find((c) => c.name === name)!.port);
      else if (name === 'nginx' && s.nginx) healthy = await httpHealthy(`http://127.0.0.1:${s.nginx.port}`);
      else if (name === 'redis') healthy = await pingRedis(url!);
      else healthy = true;
    }
    let uptime: number | null = null;
    if (pid !== null) {
      try {
        uptime = Math.round(
          (Date.now() - statSync(path.join(stateDir, 'run', `${name}.pid`)).mtimeMs) / 1000,
        );
      } catch {
        uptime = null;
      }
    }
    components.push({
      name,
      pid,
      running: pid !== null,
      healthy,
      url,
      uptime_s: uptime,
      log: sup.logFile(name),
    });
  }
  let mesh: StatusReport['mesh'] = null;
  const first = urls
    .signalingHttp(s)
    .find((_, i) => components.find((c) => c.name === s.signaling[i]!.name)?.healthy);
  if (first) {
    const agents = await httpRequest(`${first}/agents`, { timeoutMs: 1_000 }).catch(() => undefined);
    const conns = await httpRequest(`${first}/connections`, { timeoutMs: 1_000 }).catch(() => undefined);
    mesh = {
      agents: ((agents?.json as { agents?: unknown[] })?.agents ?? []).length,
      connected: ((conns?.json as { connections?: { state: string }[] })?.connections ?? []).filter(
        (c) => c.state === 'connected',
      ).length,
    };
  }
  return {
    state_dir: stateDir,
    exists: true,
    components,
    endpoints: {
      witness: urls.witness(s),
      signaling: urls.signaling(s),
      signaling_http: urls.signalingHttp(s),
      nginx: urls.nginx(s),
      stun: urls.stun(s),
      turn: urls.turn(s),
    },
    mesh,
    signaling_mode: signalingMode(s.signaling.length, Boolean(s.redis)),
    healthy: components.every((c) => c.healthy),
  };
}
