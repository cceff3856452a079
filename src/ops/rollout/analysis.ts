// Canary analysis on WebRTC signals (Argo Rollouts' AnalysisRun, Flagger's checks): every interval
// the canary agents' own signals are measured from their sources (process records, signaling,
// their logs, the witness), and each gate becomes a measurement (measurement.ts): ok, failed,
// inconclusive when its source answered with nothing to judge yet, error when the source did not
// answer. Gates are pure over the signals, so the thresholds are unit-testable.
import { promises as fs } from 'node:fs';
import type { Dispatcher } from 'undici';
import { SignalingClient } from '../../clients/signaling.js';
import type { Supervisor } from '../fleet/supervisor.js';
import { mergeConnections } from '../fleet-views.js';
import { minConnectionSuccess, type Thresholds } from '../monitoring/thresholds.js';
import { runWitnessQuery } from '../witness/query.js';
import { agentProcessName, registrations } from './agents.js';
import type { Measurement } from './measurement.js';

/** A source's answer, or why it gave none. */
export type Sourced<T> = T | { error: string };
export const unanswered = <T extends object>(x: Sourced<T>): x is { error: string } => 'error' in x;

export interface Pair {
  agent: string;
  peer: string;
  /** The state either side reports: connected wins, then failed; none reported: null. */
  state: string | null;
  rtt_ms: number | null;
}

export interface Signals {
  agents: string[];
  /** From the state's process records: always measurable. */
  running: string[];
  /**
   * Agents restarted since the analysis began (by the supervisor, or systemd for a unit), with how
   * often: a candidate that crashes and is brought back is not healthy. Absent in older states.
   */
  restarted?: { agent: string; times: number }[];
  registered: Sourced<{ ids: string[] }>;
  /** Pairs (canary, peer in the same registry and mesh), as the agents report them to signaling. */
  pairs: Sourced<{ pairs: Pair[] }>;
  log_errors: Sourced<{ count: number; first: string | null }>;
  /** The canary agents' witness events since the phase began. */
  witness: Sourced<{ total: number; errors: number; signature_failures: number }>;
}

/** The canary's gates; all but rtt_p95_ms must measure in a window for it to pass (--optional-gate). */
export const CANARY_GATES = [
  'agents_healthy',
  'agents_registered',
  'log_errors',
  'witness_error_rate',
  'connection_success',
  'signature_failures',
  'rtt_p95_ms',
] as const;
export type CanaryGate = (typeof CANARY_GATES)[number];
export const DEFAULT_REQUIRED: CanaryGate[] = CANARY_GATES.filter((g) => g !== 'rtt_p95_ms');

function p95(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
}

const round = (x: number) => Math.round(x * 1000) / 1000;
// Only `failed` settles a pair as down: a `closed` or `disconnected` link is what a peer reports while
// the two re-negotiate (the moved agent's new offer replaces the old link), and is followed by a new one.
const SETTLED_DOWN = new Set(['failed']);

/** Pure: every gate over one measurement of the signals. */
export function evaluateGates(s: Signals, t: Thresholds): Measurement[] {
  const out: Measurement[] = [];
  const gate = (
    name: CanaryGate,
    threshold: string,
    m: Pick<Measurement, 'status' | 'value'> & { detail?: string | undefined },
  ) =>
    out.push({
      gate: name,
      threshold,
      status: m.status,
      value: m.value,
      ...(m.detail ? { detail: m.detail } : {}),
    });
  const error = (e: { error: string }) => ({ status: 'error' as const, value: null, detail: e.error });

  const restarted = s.restarted ?? [];
  gate('agents_healthy', 'all running, none restarted', {
    status: s.running.length === s.agents.length && restarted.length === 0 ? 'ok' : 'failed',
    value: `${s.running.length}/${s.agents.length} running${restarted.length ? `; restarted: ${restarted.map((r) => `${r.agent} ${r.times}×`).join(', ')}` : ''}`,
  });

  const r = s.registered;
  gate(
    'agents_registered',
    'all registered',
    unanswered(r)
      ? error(r)
      : {
          status: s.agents.every((id) => r.ids.includes(id)) ? 'ok' : 'failed',
          value: `${s.agents.filter((id) => r.ids.includes(id)).length}/${s.agents.length} registered`,
        },
  );

  const l = s.log_errors;
  gate(
    'log_errors',
    'no ERROR or CRITICAL line',
    unanswered(l)
      ? error(l)
      : { status: l.count === 0 ? 'ok' : 'failed', value: l.count ? `${l.count} (${l.first})` : 0 },
  );

  const w = s.witness;
  const noEvents = {
    status: 'inconclusive' as const,
    value: null,
    detail: 'no witness events of the canary agents yet',
  };
  gate(
    'witness_error_rate',
    `<= ${t.error_rate}`,
    unanswered(w)
      ? error(w)
      : w.total === 0
        ? noEvents
        : { status: w.errors / w.total <= t.error_rate ? 'ok' : 'failed', value: round(w.errors / w.total) },
  );

  const p = s.pairs;
  const min = minConnectionSuccess(t);
  if (unanswered(p)) gate('connection_success', `>= ${min}`, error(p));
  else {
    const connected = p.pairs.filter((x) => x.state === 'connected').length;
    const pending = p.pairs.filter((x) => x.state !== 'connected' && !SETTLED_DOWN.has(x.state ?? '')).length;
    const n = p.pairs.length;
    gate(
      'connection_success',
      `>= ${min} (${connected}/${n} pairs connected)`,
      n === 0
        ? { status: 'inconclusive', value: null, detail: 'no peers to connect to yet' }
        : connected / n >= min
          ? { status: 'ok', value: round(connected / n) }
          : // Pairs still connecting may yet reach the threshold: no verdict on them until they settle.
            (connected + pending) / n >= min
            ? {
                status: 'inconclusive',
                value: round(connected / n),
                detail: `${pending} of ${n} pairs still connecting`,
              }
            : { status: 'failed', value: round(connected / n) },
    );
  }

  gate(
    'signature_failures',
    `<= ${t.validation_failures}`,
    unanswered(w)
      ? error(w)
      : w.signature_failures > t.validation_failures
        ? { status: 'failed', value: w.signature_failures }
        : w.total === 0
          ? noEvents
          : { status: 'ok', value: w.signature_failures },
  );

  const rtt = unanswered(p)
    ? null
    : p95(p.pairs.flatMap((x) => (x.state === 'connected' && x.rtt_ms !== null ? [x.rtt_ms] : [])));
  gate(
    'rtt_p95_ms',
    `<= ${t.rtt_p2p_p95_ms}`,
    unanswered(p)
      ? error(p)
      : rtt === null
        ? { status: 'inconclusive', value: null, detail: 'no connected pair reports an RTT yet' }
        : { status: rtt <= t.rtt_p2p_p95_ms ? 'ok' : 'failed', value: Math.round(rtt * 10) / 10 },
  );
  return out;
}

export interface MeasureOptions {
  sup: Supervisor;
  agents: string[];
  instances: string[];
  /** ISO time the phase began: witness events and log lines before it are not the canary's. */
  since: string;
  /** Byte offsets of each agent's log when the phase began. */
  logOffsets: Record<string, number>;
  /** Each agent's restart count when the analysis began (restartCounts); absent: not counted. */
  restartsAtStart?: Record<string, number> | undefined;
  /** null: no witness configured, which is reported as an error of its gates, never a pass. */
  witness: { url: string; token?: string | undefined } | null;
  dispatcher?: Dispatcher | undefined;
  signal?: AbortSignal | undefined;
}

async function logErrors(file: string, from: number): Promise<{ count: number; first: string | null }> {
  const fh = await fs.open(file, 'r');
  let text: string;
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(Math.max(0, Math.min(size - from, 4 * 1024 * 1024)));
    await fh.read(buf, 0, buf.length, from);
    text = buf.toString('utf8');
  } finally {
    await fh.close();
  }
  const bad = text.split('\n').filter((l) => /\b(ERROR|CRITICAL)\b/.test(l));
  return { count: bad.length, first: bad[0]?.slice(0, 160) ?? null };
}

/** Each agent's restart count now: the baseline `measure` compares with. */
export function restartCounts(sup: Supervisor, agents: string[]): Record<string, number> {
  return Object.fromEntries(agents.map((id) => [id, sup.restartCount(agentProcessName(id))]));
}

export async function logOffsets(sup: Supervisor, agents: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const id of agents)
    out[id] = await fs.stat(sup.logFile(agentProcessName(id))).then(
      (s) => s.size,
      () => 0,
    );
  return out;
}

const why = (err: unknown) => (err as Error).message;

/** Measures the canary agents' own signals once; a source that does not answer is an error, not a pass. */
export async function measure(o: MeasureOptions): Promise<Signals> {
  const net = { dispatcher: o.dispatcher, signal: o.signal };
  const { on, unanswered: silent } = await registrations(o.instances, net);
  const running = o.agents.filter((id) => o.sup.running(agentProcessName(id)) !== undefined);
  const base = o.restartsAtStart;
  const restarted = base
    ? Object.entries(restartCounts(o.sup, o.agents))
        .map(([agent, n]) => ({ agent, times: n - (base[agent] ?? 0) }))
        .filter((r) => r.times > 0)
    : [];
  const nobody =
    silent.length === o.instances.length
      ? { error: `no signaling instance answered: ${silent.join('; ') || 'none recorded'}` }
      : null;
  const registered = nobody ?? { ids: o.agents.filter((id) => on.has(id)) };
  const pairs = nobody ?? (await measurePairs(o, on, net));

  let log: Signals['log_errors'] = { count: 0, first: null };
  for (const id of o.agents) {
    try {
      const e = await logErrors(o.sup.logFile(agentProcessName(id)), o.logOffsets[id] ?? 0);
      if (!unanswered(log)) log = { count: log.count + e.count, first: log.first ?? e.first };
    } catch (err) {
      log = { error: `cannot read ${agentProcessName(id)}'s log: ${why(err)}` };
    }
  }

  let witness: Signals['witness'] = { error: 'no witness configured (IF_WITNESS_ENDPOINT or --witness)' };
  if (o.witness) {
    const w = o.witness;
    const q = (query: Record<string, unknown>) =>
      runWitnessQuery({
        url: w.url,
        token: w.token,
        dispatcher: o.dispatcher,
        timeoutMs: 3_000,
        body: { query, time_range: { from: o.since, to: 'now' }, limit: 10_000 },
      });
    try {
      const [own, sigs] = await Promise.all([
        q({ agent_id: { $in: o.agents } }),
        q({ event: 'signature_verification_failed', peer_id: { $in: o.agents } }),
      ]);
      witness = {
        total: own.results.length,
        errors: own.results.filter(isErrorEvent).length,
        signature_failures:
          sigs.results.length + own.results.filter((e) => e.event === 'signature_verification_failed').length,
      };
    } catch (err) {
      witness = { error: `witness ${w.url}: ${why(err)}` };
    }
  }
  return { agents: o.agents, running, restarted, registered, pairs, log_errors: log, witness };
}

async function measurePairs(
  o: MeasureOptions,
  on: Awaited<ReturnType<typeof registrations>>['on'],
  net: { dispatcher?: Dispatcher | undefined; signal?: AbortSignal | undefined },
): Promise<Signals['pairs']> {
  const registered = o.agents.filter((id) => on.has(id));
  // Each report once (a cluster's instances all list them), asked of the instances holding canaries.
  const urls = [...new Set(registered.map((id) => on.get(id)!.url))];
  const answers = await Promise.allSettled(
    urls.map((u) => new SignalingClient(u, { timeoutMs: 2_000, ...net }).connections()),
  );
  const failed = answers.flatMap((a) => (a.status === 'rejected' ? [why(a.reason)] : []));
  if (urls.length && failed.length === urls.length)
    return { error: `no /connections answer: ${failed.join('; ')}` };
  const reports = new Map<string, { state: string; rtt_ms: number | null; updated_at: string }[]>();
  for (const c of mergeConnections(answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : [])))) {
    const key = [c.agent_id, c.peer_id].sort().join('\u0000');
    reports.set(key, [...(reports.get(key) ?? []), c]);
  }
  const pairs: Pair[] = [];
  for (const id of registered) {
    // Peers: agents of the same registry (instance, or cluster) and the same mesh.
    const mine = on.get(id)!;
    const peers = [...on]
      .filter(([p, r]) => p !== id && r.registry === mine.registry && r.mesh === mine.mesh)
      .map(([p]) => p);
    for (const peer of peers) {
      if (o.agents.includes(peer) && peer < id) continue; // each canary-canary pair once
      // A report older than the later of the two registrations is about an earlier process of one of
      // them (a peer's "closed" as the agent moved): not about this pair.
      const since = [mine.connected_at, on.get(peer)!.connected_at].sort().at(-1)!;
      const rs = (reports.get([id, peer].sort().join('\u0000')) ?? []).filter((r) => r.updated_at >= since);
      const up = rs.filter((r) => r.state === 'connected');
      pairs.push({
        agent: id,
        peer,
        state: up.length
          ? 'connected'
          : ((rs.find((r) => SETTLED_DOWN.has(r.state)) ?? rs[0])?.state ?? null),
        rtt_ms: up.find((r) => r.rtt_ms !== null)?.rtt_ms ?? null,
      });
    }
  }
  return { pairs };
}

/** An event counted as an error: the runbook's `.*error.*`, plus failures and failed connections. */
export function isErrorEvent(e: Record<string, unknown>): boolean {
  return (
    /error|failed|failure/i.test(String(e.event)) ||
    /^(error|critical)$/i.test(String(e.severity ?? '')) ||
    (e.event === 'connection_state_changed' &&
      (e.metadata as { state?: string } | undefined)?.state === 'failed')
  );
}
