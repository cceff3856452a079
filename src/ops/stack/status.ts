import { httpRequest } from '../../clients/http.js';
import { prometheusReady } from '../../exec/prometheus.js';
import { pingRedis } from '../../exec/redis.js';
import { listProcesses, type ProcessRecord, type ProcessRole } from '../../state/processes.js';
import type { OpContext } from '../shared.js';
import { type SignalingMode, signalingMode } from './signaling-topology.js';
import { httpHealthy, readStack, tcpOpen, urls } from './stack.js';
import { Supervisor } from './supervisor.js';

export interface ComponentStatus {
  name: string;
  role: ProcessRole;
  /** What started it: `up` or `deploy`. */
  owner: string;
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
    prometheus: string | null;
  } | null;
  mesh: { agents: number; connected: number } | null;
  /** "redis": instances share one mesh; "standby": one active, the others hot standbys. */
  signaling_mode: SignalingMode | null;
  healthy: boolean;
}

const httpOf = (url: string) => url.replace(/^ws(s?):\/\//, 'http$1://');

/** Does a running process answer as its role should? */
async function answers(p: ProcessRecord, ctx: Pick<OpContext, 'dispatcher'>): Promise<boolean> {
  switch (p.role) {
    case 'witness':
    case 'signaling':
    case 'nginx':
      return p.url ? httpHealthy(httpOf(p.url), ctx.dispatcher) : true;
    case 'coturn':
      return p.port ? tcpOpen(p.port) : true;
    case 'redis':
      return p.url ? pingRedis(p.url) : p.port ? tcpOpen(p.port) : true;
    case 'prometheus':
      return p.url ? prometheusReady(p.url, ctx.dispatcher) : true;
    default:
      return true;
  }
}

/** Every process recorded in the state directory (what `up` and `deploy` started alike) and the mesh. */
export async function status(
  stateDir: string,
  ctx: Pick<OpContext, 'clock' | 'dispatcher'>,
): Promise<StatusReport> {
  const s = readStack(stateDir);
  const procs = listProcesses(stateDir);
  if (!s && procs.length === 0)
    return {
      state_dir: stateDir,
      exists: false,
      components: [],
      endpoints: null,
      mesh: null,
      signaling_mode: null,
      healthy: false,
    };
  const sup = new Supervisor(stateDir, { clock: ctx.clock, owner: 'status' });
  // In the order they were started: witness first, agents last.
  const ordered = [...procs].sort(
    (a, b) => a.started_at.localeCompare(b.started_at) || a.name.localeCompare(b.name),
  );
  const components = await Promise.all(
    ordered.map(async (p): Promise<ComponentStatus> => {
      const pid = sup.running(p.name) ?? null;
      return {
        name: p.name,
        role: p.role,
        owner: p.owner,
        pid,
        running: pid !== null,
        healthy: pid !== null && (await answers(p, ctx)),
        url: p.url ?? null,
        uptime_s: pid !== null ? Math.round((ctx.clock.now() - Date.parse(p.started_at)) / 1000) : null,
        log: sup.logFile(p.name),
      };
    }),
  );
  const signaling = components.find((c) => c.role === 'signaling' && c.healthy && c.url);
  let mesh: StatusReport['mesh'] = null;
  const instances = components.filter((c) => c.role === 'signaling').length;
  let mode: SignalingMode | null = instances ? signalingMode(instances, false) : null;
  if (signaling?.url) {
    const get = (p: string) =>
      httpRequest(`${httpOf(signaling.url!)}${p}`, { timeoutMs: 1_000, dispatcher: ctx.dispatcher }).catch(
        () => undefined,
      );
    const [agents, conns, health] = await Promise.all([get('/agents'), get('/connections'), get('/health')]);
    // The instance says whether it shares the mesh through Redis (a configured one counts too).
    mode = signalingMode(instances, (health?.json as { cluster?: string })?.cluster === 'redis');
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
    endpoints: s
      ? {
          witness: urls.witness(s),
          signaling: urls.signaling(s),
          signaling_http: urls.signalingHttp(s),
          nginx: urls.nginx(s),
          stun: urls.stun(s),
          turn: urls.turn(s),
          prometheus: urls.prometheus(s),
        }
      : null,
    mesh,
    signaling_mode: mode,
    healthy: components.length > 0 && components.every((c) => c.healthy),
  };
}
