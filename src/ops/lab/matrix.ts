// The NAT traversal matrix (issue 26.3): for a pair of NAT types and an ICE policy, a lab of its own
// with two real `ifmesh agent run` processes, one per host, and what happened: connected or not, the
// candidate type each end reports for its side of the selected pair, the time from the offer to the
// DataChannel being open (the witness events' own timestamps), and whether the TURN fallback ran.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { loadOrCreateIdentity } from '../../crypto/key-file.js';
import { packageRoot } from '../../paths.js';
import { waitFor } from '../../util/wait.js';
import type { OpContext } from '../shared.js';
import { type LabState, labDown, labUp } from './lab.js';
import type { NatType } from './plan.js';

export interface PairCase {
  nats: [NatType, NatType];
  policy: 'all' | 'relay';
}

export interface PairResult extends PairCase {
  connected: boolean;
  /** Each agent's own candidate type on the selected pair, as it reports it to /connections. */
  candidate_types: [string | null, string | null];
  /** Offer sent (the offerer's first ice_candidate_sent) to p2p_connection_established, ms. */
  open_ms: number | null;
  /** The offerer's direct attempt failed and it went to TURN (turn_fallback_initiated). */
  fallback: boolean;
  /** The offerer's events along the way (fallback, healing), in order, repeats collapsed. */
  offerer_events: string[];
  /** What went wrong when it did not connect (agent output tail). */
  detail?: string;
}

export interface PairOptions extends PairCase {
  /** The lab's name (unique per concurrent run). */
  name: string;
  fallbackMs?: number;
  /** How long a pair may take before it counts as not connected. */
  connectTimeoutMs?: number;
  /** Extra environment for both agents (the test hooks, e.g. IFMESH_TEST_NO_RELAY_REACH). */
  agentEnv?: Record<string, string>;
  ctx: Pick<OpContext, 'exec' | 'env' | 'clock'>;
}

export interface Connection {
  agent_id: string;
  peer_id: string;
  state: string;
  candidate_type: string | null;
}

/** A command in the lab's public namespace, run in the lab's directory (its state goes there). */
async function inPub(lab: LabState, ctx: PairOptions['ctx'], args: string[]): Promise<string> {
  const r = await ctx.exec('ip', ['netns', 'exec', lab.plan.public.namespace, ...args], {
    timeoutMs: 10_000,
    cwd: lab.dir,
  });
  return r.stdout;
}

/** The lab signaling's /connections, read from the public namespace; [] when it does not answer. */
export async function connections(lab: LabState, ctx: PairOptions['ctx']): Promise<Connection[]> {
  const out = await inPub(lab, ctx, [
    'curl',
    '-s',
    '--max-time',
    '3',
    `http://${lab.plan.signaling.address}:${lab.plan.signaling.port}/connections`,
  ]);
  try {
    return (JSON.parse(out) as { connections: Connection[] }).connections;
  } catch {
    return [];
  }
}

/** One agent's witness events, read from the public namespace; [] when the witness does not answer. */
export async function events(
  lab: LabState,
  ctx: PairOptions['ctx'],
  agent: string,
): Promise<{ event: string; timestamp: string; metadata?: Record<string, unknown> }[]> {
  const bin = path.join(packageRoot(), 'dist/bin/ifmesh.js');
  const out = await inPub(lab, ctx, [
    process.execPath,
    bin,
    'witness',
    'query',
    '--witness',
    lab.plan.witness.url,
    '--agent',
    agent,
    '--limit',
    '1000',
    // Its own state (the witness checkpoint it keeps) in the lab, removed with it.
    '--state-dir',
    path.join(lab.dir, 'query'),
    '--json',
  ]);
  try {
    const doc = JSON.parse(out) as { events?: unknown[]; results?: unknown[] };
    return (doc.events ?? doc.results ?? []) as never;
  } catch {
    return [];
  }
}

/** One `ifmesh agent run` (a1 on h1, a2 on h2 …) in a lab host, with the lab's first coturn. */
export function startAgent(
  lab: LabState,
  host: number,
  policy: string,
  fallbackMs: number,
  extraEnv: Record<string, string> = {},
): {
  child: ChildProcess;
  ready: Promise<boolean>;
  output: () => string;
} {
  const h = lab.plan.hosts[host]!;
  const id = `a${host + 1}`;
  const key = path.join(lab.dir, `${id}.key`);
  const bin = path.join(packageRoot(), 'dist/bin/ifmesh.js');
  const t = lab.plan.turn[0]!;
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      h.namespace,
      process.execPath,
      bin,
      'agent',
      'run',
      '--id',
      id,
      '--key',
      key,
      '--signaling',
      lab.plan.signaling.url,
      '--stun',
      t.stunUrl,
      '--turn',
      t.url,
      '--ice-address',
      h.address,
      '--ice-policy',
      policy,
      '--state-dir',
      path.join(lab.dir, id),
      '--witness',
      lab.plan.witness.url,
      '--json',
    ],
    {
      cwd: lab.dir,
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        TURN_USERNAME: lab.turn_credentials.username,
        TURN_PASSWORD: lab.turn_credentials.password,
        TURN_FALLBACK_TIMEOUT_MS: String(fallbackMs),
        IF_WITNESS_API_KEY: lab.witness_api_key,
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr!.on('data', (d) => {
    err = (err + d).slice(-4_000);
  });
  const ready = new Promise<boolean>((resolve) => {
    createInterface({ input: child.stdout! }).once('line', () => resolve(true));
    child.once('exit', () => resolve(false));
  });
  return { child, ready, output: () => err };
}

/** The events that tell how a pair got connected: the fallback and healing. */
const TRAIL = new Set([
  'turn_fallback_initiated',
  'turn_fallback_successful',
  'connection_attempts_failed',
  'mesh_healing_attempt',
  'mesh_reconnection_scheduled',
  'mesh_partition_healed',
  'p2p_connection_established',
]);

/** One cell of the matrix, in a lab of its own that is taken down whatever happens. */
export async function runPair(o: PairOptions): Promise<PairResult> {
  const fallbackMs = o.fallbackMs ?? 5_000;
  const up = await labUp({ name: o.name, nats: o.nats, turnServers: 1, dryRun: false }, o.ctx);
  if (up.dry_run) throw new Error('unreachable');
  const lab = up.lab;
  const agents: ReturnType<typeof startAgent>[] = [];
  try {
    for (const id of ['a1', 'a2']) await loadOrCreateIdentity(path.join(lab.dir, `${id}.key`), id);
    // a1 first; a2 registers later and so offers (CONTRACT §1.5).
    agents.push(startAgent(lab, 0, o.policy, fallbackMs, o.agentEnv));
    if (!(await agents[0]!.ready)) throw new Error(`a1 did not start: ${agents[0]!.output()}`);
    agents.push(startAgent(lab, 1, o.policy, fallbackMs, o.agentEnv));
    if (!(await agents[1]!.ready)) throw new Error(`a2 did not start: ${agents[1]!.output()}`);
    let last: Connection[] = [];
    const both = (cs: Connection[]) =>
      ['a1', 'a2'].every((a) => cs.some((c) => c.agent_id === a && c.state === 'connected'));
    const connected = await waitFor(
      async () => both(await connections(lab, o.ctx)),
      { timeoutMs: o.connectTimeoutMs ?? fallbackMs * 2 + 20_000, intervalMs: 200 },
      o.ctx.clock,
    );
    let types: [string | null, string | null] = [null, null];
    if (connected) {
      // Each end corrects its type once the peer said how it saw it (a `path` message), and reports
      // it with its next quality update (every 2 s): wait for two reports that agree.
      let previous = '';
      await waitFor(
        async () => {
          last = await connections(lab, o.ctx);
          const now = ['a1', 'a2'].map((a) => last.find((c) => c.agent_id === a)?.candidate_type ?? null);
          const key = JSON.stringify(now);
          const stable = key === previous && now.every((t) => t !== null);
          previous = key;
          types = now as [string | null, string | null];
          return stable;
        },
        { timeoutMs: 10_000, intervalMs: 2_500 },
        o.ctx.clock,
      );
    }
    let open: number | null = null;
    let fallback = false;
    let trail: string[] = [];
    await waitFor(
      async () => {
        const ev = await events(lab, o.ctx, 'a2');
        const offer = ev.find((e) => e.event === 'ice_candidate_sent' && e.metadata?.sdp === 'offer');
        const done = ev.find((e) => e.event === 'p2p_connection_established');
        fallback = ev.some((e) => e.event === 'turn_fallback_initiated');
        trail = ev
          .filter((e) => TRAIL.has(e.event))
          .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp))
          .map((e) => e.event)
          .filter((e, i, all) => e !== all[i - 1]);
        if (offer && done) open = Date.parse(done.timestamp) - Date.parse(offer.timestamp);
        return !connected || open !== null;
      },
      { timeoutMs: 10_000, intervalMs: 500 },
      o.ctx.clock,
    );
    return {
      nats: o.nats,
      policy: o.policy,
      connected,
      candidate_types: types,
      open_ms: open,
      fallback,
      offerer_events: trail,
      ...(connected ? {} : { detail: agents.map((a) => a.output().slice(-400)).join(' | ') }),
    };
  } finally {
    for (const a of agents) a.child.kill('SIGTERM');
    await labDown({ name: o.name }, o.ctx);
  }
}

export const NAT_PAIRS: [NatType, NatType][] = [
  ['none', 'none'],
  ['none', 'cone'],
  ['none', 'symmetric'],
  ['cone', 'cone'],
  ['cone', 'symmetric'],
  ['symmetric', 'symmetric'],
];

/** The docs/nat-traversal.md table between its markers. */
export function renderMatrix(rows: PairResult[]): string {
  const cell = (r: PairResult) =>
    `| ${r.nats[0]} ↔ ${r.nats[1]} | ${r.policy} | ${r.connected ? 'yes' : '**no**'} | ${r.candidate_types.map((t) => t ?? '–').join(' / ')} | ${r.open_ms === null ? '–' : `${(r.open_ms / 1000).toFixed(2)} s`} | ${r.fallback ? 'yes' : 'no'} |`;
  return [
    '| NATs (a1 ↔ a2) | ICE policy | connected | candidate types (a1 / a2) | offer → DataChannel open | TURN fallback |',
    '|---|---|---|---|---|---|',
    ...rows.map(cell),
  ].join('\n');
}
