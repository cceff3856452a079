// P1 total outage: restart the signaling instances and the nginx in front of them whose process died
// (the local stack's or a deployment's, from the state's process list), and investigate-p1-outage.sh's
// checks.

import { lookup } from 'node:dns/promises';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import { httpRequest } from '../../clients/http.js';
import { scanProcesses } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import { formatDuration } from '../../ui/units.js';
import { restartRecorded } from '../fleet/restart.js';
import { Supervisor } from '../fleet/supervisor.js';
import type { OpContext } from '../shared.js';
import { tcpOpen } from '../stack/stack.js';
import { runWitnessQuery } from '../witness/query.js';
import { checkTurnPorts, describeTurnCheck, type TurnPortCheck, tcpConnect } from './turn.js';

const portOf = (u: URL) => u.port || (u.protocol === 'https:' || u.protocol === 'wss:' ? '443' : '80');

export interface Restart {
  name: string;
  port: number | null;
  ok: boolean;
  pid?: number;
  detail: string;
}

/**
 * The dead signaling instances and front door: recorded with role `signaling` or `nginx` (every
 * agent reaches signaling through it: dead, it is a total outage too), process gone; nginx last, as
 * its health is an instance's.
 */
export function deadSignaling(state: StateDir, ctx: Pick<OpContext, 'clock'>) {
  const sup = new Supervisor(state, { clock: ctx.clock, owner: 'incident' });
  // What reads: a torn record is named in the incident's next steps, the other instances restarted.
  const dead = scanProcesses(state).records.filter(
    (r) => (r.role === 'signaling' || r.role === 'nginx') && sup.running(r.name) === undefined,
  );
  return [...dead.filter((r) => r.role === 'signaling'), ...dead.filter((r) => r.role === 'nginx')];
}

/**
 * Restarts every dead signaling instance through the fleet's restart path: from its recorded launch
 * spec (same command line, env file, cwd and cluster), under its original owner.
 */
export async function restartDeadSignaling(state: StateDir, ctx: OpContext): Promise<Restart[]> {
  const out: Restart[] = [];
  for (const rec of deadSignaling(state, ctx)) {
    const r = await restartRecorded(state, rec.name, { why: 'restarted by incident p1 (process gone)' }, ctx);
    out.push({
      name: rec.name,
      port: rec.port ?? null,
      ok: r.ok,
      ...(r.pid !== null ? { pid: r.pid } : {}),
      detail: r.already_running
        ? 'already restarted (by the supervisor), /health answers'
        : r.ok
          ? `${r.detail}, /health answers`
          : r.detail,
    });
  }
  return out;
}

export interface Investigation {
  resources: {
    load_average: number[];
    memory: { total_mb: number; free_mb: number };
    disk: { path: string; free_mb: number; total_mb: number } | null;
    processes: { name: string; role: string; pid: number; running: boolean; rss_mb: number | null }[];
  };
  network: { name: string; port: number; listening: boolean }[];
  /** The runbook's `ss … 3478`: each of the fleet's TURN servers (TURN_SERVERS, else the coturn records). */
  turn: TurnPortCheck[];
  witness_errors: { count: number | null; recent: Record<string, unknown>[]; error?: string };
  dns: { host: string; address: string | null; error?: string }[];
  backends: { name: string; url: string; healthy: boolean; detail: string }[];
}

function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** dns.lookup has no timeout of its own. */
async function lookupWithin(host: string, ms: number, ctx: Pick<OpContext, 'clock'>): Promise<string> {
  let timer: ReturnType<OpContext['clock']['setTimeout']> | undefined;
  try {
    return await Promise.race([
      lookup(host).then((r) => r.address),
      new Promise<never>((_, reject) => {
        timer = ctx.clock.setTimeout(() => reject(new Error(`no answer within ${formatDuration(ms)}`)), ms);
      }),
    ]);
  } finally {
    ctx.clock.clearTimeout(timer);
  }
}

/** investigate-p1-outage.sh: resources, network, the witness's recent errors, DNS, backends. */
export async function investigate(
  o: {
    state: StateDir;
    hosts: string[];
    witness: { url: string; token?: string | undefined } | null;
    /** The fleet's signaling instances (http base URLs): those not recorded here are checked at host:port. */
    signaling?: string[];
    turn?: string[];
  },
  ctx: OpContext,
): Promise<Investigation> {
  const sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'incident' });
  const records = scanProcesses(o.state).records;
  const disk = await fs
    .statfs(existsSync(o.state.root) ? o.state.root : ctx.cwd)
    .then((s) => ({
      path: o.state.root,
      free_mb: Math.round((s.bavail * s.bsize) / 2 ** 20),
      total_mb: Math.round((s.blocks * s.bsize) / 2 ** 20),
    }))
    .catch(() => null);
  const recorded = records.filter((r) => r.port !== undefined && r.role !== 'coturn');
  // Instances the operator declared (not started here) are checked where they are: host:port.
  const declared = (o.signaling ?? [])
    .map((u) => new URL(u))
    .filter((u) => !recorded.some((r) => r.role === 'signaling' && String(r.port) === portOf(u)));
  const network = await Promise.all([
    ...recorded.map(async (r) => ({ name: r.name, port: r.port!, listening: await tcpOpen(r.port!) })),
    ...declared.map(async (u) => ({
      name: `signaling ${u.host}`,
      port: Number(portOf(u)),
      listening: (await tcpConnect(u.hostname.replace(/^\[|\]$/g, ''), Number(portOf(u)), ctx.clock)).ok,
    })),
  ]);
  // A Binding, not an Allocate: the question is the runbook's "is the port answering".
  const turn = await checkTurnPorts(o.turn ?? [], { credentials: null, allocate: false, clock: ctx.clock });
  let witnessErrors: Investigation['witness_errors'] = { count: null, recent: [] };
  const backends: Investigation['backends'] = [];
  if (o.witness) {
    try {
      const a = await runWitnessQuery({
        url: o.witness.url,
        token: o.witness.token,
        dispatcher: ctx.dispatcher,
        timeoutMs: 3_000,
        body: {
          query: { event: { regex: '.*(error|failed|failure).*' } },
          time_range: { from: '-30m', to: 'now' },
        },
      });
      witnessErrors = {
        count: a.results.length,
        recent: a.results.slice(-10).map((e) => ({
          timestamp: e.timestamp,
          event: e.event,
          agent_id: e.agent_id,
          metadata: e.metadata,
        })),
      };
    } catch (err) {
      witnessErrors = { count: null, recent: [], error: (err as Error).message };
    }
    const h = await httpRequest(`${o.witness.url}/health`, {
      timeoutMs: 3_000,
      dispatcher: ctx.dispatcher,
    }).catch((err: Error) => ({ status: 0, text: err.message }));
    backends.push({
      name: 'witness',
      url: o.witness.url,
      healthy: h.status === 200,
      detail: h.status ? `HTTP ${h.status}` : h.text,
    });
  }
  const dns = await Promise.all(
    [...new Set(o.hosts)].map(async (host) => {
      try {
        return { host, address: await lookupWithin(host, 3_000, ctx) };
      } catch (err) {
        return { host, address: null, error: (err as Error).message };
      }
    }),
  );
  return {
    resources: {
      load_average: os.loadavg().map((x) => Math.round(x * 100) / 100),
      memory: { total_mb: Math.round(os.totalmem() / 2 ** 20), free_mb: Math.round(os.freemem() / 2 ** 20) },
      disk,
      processes: records.map((r) => {
        const running = sup.running(r.name) !== undefined;
        return { name: r.name, role: r.role, pid: r.pid, running, rss_mb: running ? rssMb(r.pid) : null };
      }),
    },
    network,
    turn,
    witness_errors: witnessErrors,
    dns,
    backends,
  };
}

/** One line per check, for the terminal and the Markdown report. */
export function summarizeInvestigation(inv: Investigation): string[] {
  const r = inv.resources;
  const lines = [
    `resources: load ${r.load_average.join(' ')}, memory ${r.memory.free_mb}/${r.memory.total_mb} MiB free${r.disk ? `, disk ${r.disk.free_mb}/${r.disk.total_mb} MiB free` : ''}`,
    ...r.processes.map(
      (p) =>
        `process ${p.name} (${p.role}) pid ${p.pid}: ${p.running ? `running, ${p.rss_mb ?? '?'} MiB` : 'DEAD'}`,
    ),
    ...inv.network.map(
      (n) => `network ${n.name} port ${n.port}: ${n.listening ? 'listening' : 'NOT listening'}`,
    ),
    ...(inv.turn ?? []).map((t) => `turn ${describeTurnCheck(t)}`),
    ...(inv.turn && inv.turn.length === 0
      ? ['turn: no TURN server in the fleet (TURN_SERVERS unset, no coturn record)']
      : []),
    inv.witness_errors.count === null
      ? `witness errors (30 min): unknown (${inv.witness_errors.error ?? 'no witness'})`
      : `witness errors (30 min): ${inv.witness_errors.count}${inv.witness_errors.recent.length ? `; latest ${inv.witness_errors.recent.map((e) => e.event).join(', ')}` : ''}`,
    ...inv.dns.map((d) => `dns ${d.host}: ${d.address ?? `FAILED (${d.error})`}`),
    ...inv.backends.map(
      (b) => `backend ${b.name} ${b.url}: ${b.healthy ? 'healthy' : 'UNHEALTHY'} (${b.detail})`,
    ),
  ];
  return lines;
}
