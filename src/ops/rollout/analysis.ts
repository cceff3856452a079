// Canary analysis (Argo Rollouts' AnalysisRun, Flagger's checks): every interval the canary agents'
// own signals are measured and each gate passes or fails; more failed checks than the failure limit
// fail the analysis. Gates are pure over the measured signals, so the thresholds are unit-testable;
// the loop runs on the injected clock, so a five-minute window runs in milliseconds under a fake one.
import { promises as fs } from 'node:fs';
import type { Dispatcher } from 'undici';
import { SignalingClient } from '../../clients/signaling.js';
import type { Clock } from '../../util/clock.js';
import type { Supervisor } from '../fleet/supervisor.js';
import { mergeConnections } from '../fleet-views.js';
import { runWitnessQuery } from '../witness/query.js';
import { agentProcessName, registrations } from './agents.js';

export interface Signals {
  agents: string[];
  running: string[];
  registered: string[];
  /** Pairs (canary, peer in the same registry and mesh) and whether either side reports them connected. */
  pairs: { agent: string; peer: string; connected: boolean; rtt_ms: number | null }[];
  log_errors: { count: number; first: string | null };
  /** null when no witness is configured or it did not answer. */
  witness: { total: number; errors: number; signature_failures: number } | null;
}

export interface GateResult {
  gate: string;
  ok: boolean;
  value: number | string | null;
  threshold: string;
}

export interface GateThresholds {
  error_rate: number;
  connection_success: number;
  rtt_p95_ms: number;
}

export const DEFAULT_GATES: GateThresholds = { error_rate: 0.05, connection_success: 0.95, rtt_p95_ms: 100 };

function p95(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** Pure: every gate over one measurement. A gate with nothing to measure passes with value null. */
export function evaluateGates(s: Signals, t: GateThresholds = DEFAULT_GATES): GateResult[] {
  const w = s.witness;
  const rate = w && w.total > 0 ? w.errors / w.total : null;
  const expected = s.pairs.length;
  const connected = s.pairs.filter((p) => p.connected).length;
  const success = expected ? connected / expected : null;
  const rtt = p95(s.pairs.flatMap((p) => (p.connected && p.rtt_ms !== null ? [p.rtt_ms] : [])));
  return [
    {
      gate: 'agents_healthy',
      ok: s.running.length === s.agents.length,
      value: `${s.running.length}/${s.agents.length} running`,
      threshold: 'all running',
    },
    {
      gate: 'agents_registered',
      ok: s.registered.length === s.agents.length,
      value: `${s.registered.length}/${s.agents.length} registered`,
      threshold: 'all registered',
    },
    {
      gate: 'log_errors',
      ok: s.log_errors.count === 0,
      value: s.log_errors.count ? `${s.log_errors.count} (${s.log_errors.first})` : 0,
      threshold: 'no ERROR or CRITICAL line',
    },
    {
      gate: 'witness_error_rate',
      ok: rate === null || rate <= t.error_rate,
      value: rate === null ? null : round(rate),
      threshold: `<= ${t.error_rate}`,
    },
    {
      gate: 'connection_success',
      ok: success === null || success >= t.connection_success,
      value: success === null ? null : round(success),
      threshold: `>= ${t.connection_success} (${connected}/${expected} pairs connected)`,
    },
    {
      gate: 'signature_failures',
      ok: (w?.signature_failures ?? 0) === 0,
      value: w ? w.signature_failures : null,
      threshold: '0',
    },
    {
      gate: 'rtt_p95_ms',
      ok: rtt === null || rtt <= t.rtt_p95_ms,
      value: rtt,
      threshold: `<= ${t.rtt_p95_ms}`,
    },
  ];
}

export interface MeasureOptions {
  sup: Supervisor;
  agents: string[];
  instances: string[];
  /** ISO time the phase began: witness events and log lines before it are not the canary's. */
  since: string;
  /** Byte offsets of each agent's log when the phase began. */
  logOffsets: Record<string, number>;
  witness: { url: string; token?: string | undefined } | null;
  dispatcher?: Dispatcher | undefined;
  signal?: AbortSignal | undefined;
}

async function logErrors(file: string, from: number): Promise<{ count: number; first: string | null }> {
  let text = '';
  try {
    const fh = await fs.open(file, 'r');
    try {
      const { size } = await fh.stat();
      const buf = Buffer.alloc(Math.max(0, Math.min(size - from, 4 * 1024 * 1024)));
      await fh.read(buf, 0, buf.length, from);
      text = buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return { count: 0, first: null };
  }
  const bad = text.split('\n').filter((l) => /\b(ERROR|CRITICAL)\b/.test(l));
  return { count: bad.length, first: bad[0]?.slice(0, 160) ?? null };
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

/** Measures the canary agents' own signals once. */
export async function measure(o: MeasureOptions): Promise<Signals> {
  const net = { dispatcher: o.dispatcher, signal: o.signal };
  const on = await registrations(o.instances, net);
  const running = o.agents.filter((id) => o.sup.running(agentProcessName(id)) !== undefined);
  const registered = o.agents.filter((id) => on.has(id));
  // Each report once (a cluster's instances all list them), asked of the instances holding canaries.
  const urls = [...new Set(registered.map((id) => on.get(id)!.url))];
  const answers = await Promise.all(
    urls.map((u) =>
      new SignalingClient(u, { timeoutMs: 2_000, ...net }).connections().catch(() => ({ connections: [] })),
    ),
  );
  const reports = new Map<string, { state: string; rtt_ms: number | null }[]>();
  for (const c of mergeConnections(answers)) {
    const key = [c.agent_id, c.peer_id].sort().join('\u0000');
    reports.set(key, [...(reports.get(key) ?? []), c]);
  }
  const pairs: Signals['pairs'] = [];
  for (const id of registered) {
    // Peers: agents of the same registry (instance, or cluster) and the same mesh.
    const mine = on.get(id)!;
    const peers = [...on]
      .filter(([p, r]) => p !== id && r.registry === mine.registry && r.mesh === mine.mesh)
      .map(([p]) => p);
    for (const peer of peers) {
      if (o.agents.includes(peer) && peer < id) continue; // each canary-canary pair once
      const rs = reports.get([id, peer].sort().join('\u0000')) ?? [];
      const up = rs.filter((r) => r.state === 'connected');
      pairs.push({
        agent: id,
        peer,
        connected: up.length > 0,
        rtt_ms: up.find((r) => r.rtt_ms !== null)?.rtt_ms ?? null,
      });
    }
  }
  let errors = { count: 0, first: null as string | null };
  for (const id of o.agents) {
    const e = await logErrors(o.sup.logFile(agentProcessName(id)), o.logOffsets[id] ?? 0);
    errors = { count: errors.count + e.count, first: errors.first ?? e.first };
  }
  let witness: Signals['witness'] = null;
  if (o.witness && o.agents.length) {
    const q = (query: Record<string, unknown>) =>
      runWitnessQuery({
        url: o.witness!.url,
        token: o.witness!.token,
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
    } catch {
      witness = null;
    }
  }
  return { agents: o.agents, running, registered, pairs, log_errors: errors, witness };
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

export interface CheckRecord {
  at: string;
  ok: boolean;
  gates: GateResult[];
}

export type AnalysisOutcome =
  | { result: 'passed'; checks: CheckRecord[] }
  | { result: 'failed'; checks: CheckRecord[]; gate: GateResult }
  | { result: 'promote'; checks: CheckRecord[] }
  | { result: 'abort'; checks: CheckRecord[] };

/**
 * `checks` measurements `intervalMs` apart; fails once more than `failureLimit` checks have failed.
 * Between checks it looks for an operator's promote or abort every `pollMs`, so `canary promote`
 * from another terminal acts within a fraction of an interval.
 */
export async function runAnalysis(o: {
  checks: number;
  intervalMs: number;
  failureLimit: number;
  evaluate: () => Promise<GateResult[]>;
  request: () => Promise<'promote' | 'abort' | undefined>;
  onCheck: (c: CheckRecord, failures: number) => void | Promise<void>;
  clock: Clock;
  signal?: AbortSignal | undefined;
  pollMs?: number;
}): Promise<AnalysisOutcome> {
  const checks: CheckRecord[] = [];
  let failures = 0;
  for (let i = 0; i < o.checks; i++) {
    const until = o.clock.now() + o.intervalMs;
    for (;;) {
      const req = await o.request();
      if (req === 'promote') return { result: req, checks };
      if (req === 'abort') return { result: req, checks };
      const left = until - o.clock.now();
      if (left <= 0) break;
      await o.clock.sleep(Math.min(left, o.pollMs ?? 250), o.signal);
    }
    const gates = await o.evaluate();
    const c: CheckRecord = { at: new Date(o.clock.now()).toISOString(), ok: gates.every((g) => g.ok), gates };
    checks.push(c);
    if (!c.ok) failures += 1;
    await o.onCheck(c, failures);
    if (failures > o.failureLimit) return { result: 'failed', checks, gate: gates.find((g) => !g.ok)! };
  }
  return { result: 'passed', checks };
}
