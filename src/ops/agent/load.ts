// ifmesh load: N temporary agents — in one process or spread over several — join the fleet's
// signaling in a mesh of their own, connect over WebRTC, and exchange signed pings over every pair
// at a fixed rate for a duration. Each pair is driven by the process that holds its lower-numbered
// agent, so a pair may span two processes; each process reports its pairs, and the report merges
// them: delivery, RTT percentiles per pair and overall, signature failures, throughput.
import { randomBytes } from 'node:crypto';
import { type IceServer, MeshAgent } from '../../agent/agent.js';
import { generateKeyPair } from '../../crypto/ed25519.js';
import { type Clock, systemClock } from '../../util/clock.js';
import { Barrier, party, tickProgress } from './barrier.js';

/** What one process of a load run does: which agents it holds, and how to drive their pairs. */
export interface LoadWorkerSpec {
  run: string;
  /** Every agent of the run, in order; this process holds ids[from..to). */
  ids: string[];
  from: number;
  to: number;
  signalingUrls: string[];
  iceServers: IceServer[];
  loopbackOnly: boolean;
  rejectUnauthorized: boolean;
  ca?: string[] | undefined;
  formTimeoutMs: number;
  durationMs: number;
  /** Signed pings per second on each pair. */
  rate: number;
  /** A ping unanswered after this long counts as lost. */
  pingTimeoutMs: number;
}

export interface PairResult {
  a: string;
  b: string;
  sent: number;
  delivered: number;
  /** Round-trip times in ms, as measured (the merge computes percentiles). */
  rtts: number[];
}

/** What one process reports while it runs, and at the end. */
export interface WorkerTick {
  sent: number;
  delivered: number;
}

export interface WorkerResult {
  pairs: PairResult[];
  signature_failures: number;
  mesh_formed_ms: number;
  /** Seconds from the first ping to the last answer or timeout. */
  elapsed_s: number;
  error?: string;
}

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

export interface LoadReport {
  ok: boolean;
  run: string;
  agents: number;
  processes: number;
  pairs: number;
  rate_per_pair: number;
  duration_s: number;
  sent: number;
  delivered: number;
  delivery_ratio: number;
  rtt_ms: Percentiles;
  signature_failures: number;
  /** Signed messages per second across the mesh (each delivered ping is two: ping and pong). */
  messages_per_second: number;
  mesh_formed_ms: number;
  per_pair: Array<{ a: string; b: string; sent: number; delivered: number; rtt_ms: Percentiles }>;
  thresholds: LoadThresholds;
  failures: string[];
}

export interface LoadThresholds {
  delivery_ratio: number;
  rtt_p95_ms: number;
  signature_failures: number;
}

export function percentiles(values: number[]): Percentiles {
  const s = [...values].sort((x, y) => x - y);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : null);
  return { p50: at(50), p95: at(95), p99: at(99), max: s.length ? s[s.length - 1]! : null };
}

/** The pairs a process drives: (i, j), i < j, with agent i its own. */
export function ownPairs(spec: Pick<LoadWorkerSpec, 'ids' | 'from' | 'to'>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = spec.from; i < spec.to; i++)
    for (let j = i + 1; j < spec.ids.length; j++) out.push([spec.ids[i]!, spec.ids[j]!]);
  return out;
}

/** The split of `agents` over `processes`: contiguous ranges whose pair counts are close. */
export function splitAgents(agents: number, processes: number): Array<[number, number]> {
  const total = (agents * (agents - 1)) / 2;
  const ranges: Array<[number, number]> = [];
  let from = 0;
  let owned = 0;
  for (let p = 0; p < processes && from < agents; p++) {
    const target = ((p + 1) * total) / processes;
    let to = from + 1;
    owned += agents - 1 - from;
    while (to < agents - (processes - p - 1) && owned + (agents - 1 - to) <= target) {
      owned += agents - 1 - to;
      to++;
    }
    if (p === processes - 1) to = agents;
    ranges.push([from, to]);
    from = to;
  }
  return ranges;
}

export interface WorkerHooks {
  clock?: Clock;
  signal?: AbortSignal | undefined;
  /** Called once this process's agents see every peer of the run; resolves when pings may start. */
  ready(meshFormedMs: number): Promise<void>;
  /** About once a second while pinging. */
  tick(t: WorkerTick): void;
  /**
   * Called once this process's pairs are done; resolves when every process is done, so that no
   * agent leaves while another process still pings it (its last pings would count as lost).
   */
  finished(): Promise<void>;
}

/** One process of a load run: its agents join, wait for the others, drive their pairs, report. */
export async function runLoadWorker(spec: LoadWorkerSpec, hooks: WorkerHooks): Promise<WorkerResult> {
  const clock = hooks.clock ?? systemClock;
  const mine = spec.ids.slice(spec.from, spec.to);
  const agents = mine.map(
    (id) =>
      new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: spec.signalingUrls,
        iceServers: spec.iceServers,
        loopbackOnly: spec.loopbackOnly,
        mesh: `load-${spec.run}`,
        rejectUnauthorized: spec.rejectUnauthorized,
        ca: spec.ca,
        clock,
      }),
  );
  const byId = new Map(agents.map((a) => [a.id, a]));
  const t0 = clock.now();
  try {
    for (const a of agents) a.start();
    await Promise.all(
      agents.map((a) =>
        a.waitForPeers(
          spec.ids.filter((p) => p !== a.id),
          spec.formTimeoutMs,
        ),
      ),
    );
    const formed = clock.now() - t0;
    await hooks.ready(formed);
    const pairs = ownPairs(spec).map(([a, b]): PairResult => ({ a, b, sent: 0, delivered: 0, rtts: [] }));
    const perPair = Math.max(1, Math.round((spec.durationMs / 1000) * spec.rate));
    const gapMs = 1000 / spec.rate;
    const start = clock.now();
    const total = () =>
      pairs.reduce((t, p) => ({ sent: t.sent + p.sent, delivered: t.delivered + p.delivered }), {
        sent: 0,
        delivered: 0,
      });
    let ticking = true;
    const ticker = (async () => {
      while (ticking && !hooks.signal?.aborted) {
        await clock.sleep(1_000).catch(() => {});
        if (ticking) hooks.tick(total());
      }
    })();
    await Promise.all(
      pairs.map(async (pair) => {
        const link = () => byId.get(pair.a)!.links.get(pair.b);
        const inflight: Promise<void>[] = [];
        for (let k = 0; k < perPair && !hooks.signal?.aborted; k++) {
          const wait = start + k * gapMs - clock.now();
          if (wait > 0) await clock.sleep(wait, hooks.signal).catch(() => {});
          if (hooks.signal?.aborted) break;
          pair.sent += 1;
          const l = link();
          if (!l?.ready) continue;
          inflight.push(
            l.ping(spec.pingTimeoutMs).then(
              (rtt) => {
                pair.delivered += 1;
                pair.rtts.push(rtt);
              },
              () => {},
            ),
          );
        }
        await Promise.all(inflight);
      }),
    );
    ticking = false;
    await ticker;
    const elapsed = (clock.now() - start) / 1000;
    await hooks.finished();
    return {
      pairs,
      signature_failures: agents.reduce((n, a) => n + a.counters.signature_failures, 0),
      mesh_formed_ms: Math.round(formed),
      elapsed_s: elapsed,
    };
  } catch (err) {
    return {
      pairs: [],
      signature_failures: agents.reduce((n, a) => n + a.counters.signature_failures, 0),
      mesh_formed_ms: Math.round(clock.now() - t0),
      elapsed_s: 0,
      error: (err as Error).message,
    };
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
  }
}

export interface LoadOptions
  extends Omit<LoadWorkerSpec, 'run' | 'ids' | 'from' | 'to'>,
    Partial<Pick<LoadWorkerSpec, 'run'>> {
  agents: number;
  processes: number;
  thresholds: LoadThresholds;
  clock?: Clock;
  signal?: AbortSignal | undefined;
  /**
   * Runs one process's share: in this process for a one-process run (runLoadWorker), in a child
   * process otherwise (the command spawns `ifmesh load --worker`). The launcher must call `ready`
   * once the share's mesh formed and start pinging only when it resolves.
   */
  launch(spec: LoadWorkerSpec, hooks: Omit<WorkerHooks, 'clock' | 'signal'>): Promise<WorkerResult>;
  onProgress?: (line: string) => void;
}

/** Every process formed, then pinging together, then merged into one report. */
export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  const run = o.run ?? randomBytes(4).toString('hex');
  const ids = Array.from({ length: o.agents }, (_, i) => `load-${run}-${i + 1}`);
  const ranges = splitAgents(o.agents, o.processes);
  let formed = 0;
  let meshFormed = 0;
  const secs = Math.round(o.durationMs / 1000);
  // Pings start when every process's agents see every peer: a barrier across the processes.
  const go = new Barrier(ranges.length, () => {
    if (formed === ranges.length)
      o.onProgress?.(
        `mesh formed in ${Math.round(meshFormed)} ms; ${o.rate}/s on each of ${(ids.length * (ids.length - 1)) / 2} pairs for ${secs} s`,
      );
  });
  // And agents leave only when every process has sent its last ping and had its answer.
  const done = new Barrier(ranges.length);
  const tick = tickProgress(ranges.length, secs, o.onProgress);
  o.onProgress?.(`${o.agents} agents in ${ranges.length} process(es) joining mesh load-${run}`);
  // A process that ends early (its mesh never formed, it died) must not leave the others waiting
  // at either barrier: they go on, and its pairs count as never run.
  const launchOne = (i: number, spec: LoadWorkerSpec) => {
    const me = party([go, done]);
    return o
      .launch(spec, {
        ready: (ms) => {
          meshFormed = Math.max(meshFormed, ms);
          formed += 1;
          return me.arrive(go);
        },
        tick: (t) => tick(i, t),
        finished: () => me.arrive(done),
      })
      .finally(() => me.leave());
  };
  const results = await Promise.all(
    ranges.map(([from, to], i) => launchOne(i, { ...o, run, ids, from, to })),
  );
  return mergeResults(run, o, results);
}

function mergeResults(
  run: string,
  o: Pick<LoadOptions, 'agents' | 'processes' | 'rate' | 'durationMs' | 'thresholds'>,
  results: WorkerResult[],
): LoadReport {
  const pairs = results.flatMap((r) => r.pairs);
  const sent = pairs.reduce((n, p) => n + p.sent, 0);
  const delivered = pairs.reduce((n, p) => n + p.delivered, 0);
  const signatureFailures = results.reduce((n, r) => n + r.signature_failures, 0);
  const elapsed = Math.max(0, ...results.map((r) => r.elapsed_s));
  const rtt = percentiles(pairs.flatMap((p) => p.rtts));
  const expected = (o.agents * (o.agents - 1)) / 2;
  const t = o.thresholds;
  const failures = [
    ...results.filter((r) => r.error).map((r) => r.error!),
    ...(pairs.length < expected ? [`${expected - pairs.length} of ${expected} pairs never ran`] : []),
    ...(sent && delivered / sent < t.delivery_ratio
      ? [`delivery ${((delivered / sent) * 100).toFixed(2)} % < ${(t.delivery_ratio * 100).toFixed(1)} %`]
      : []),
    ...((rtt.p95 ?? 0) > t.rtt_p95_ms ? [`RTT p95 ${rtt.p95!.toFixed(1)} ms > ${t.rtt_p95_ms} ms`] : []),
    ...(signatureFailures > t.signature_failures
      ? [`${signatureFailures} signature verification failure(s)`]
      : []),
  ];
  return {
    ok: failures.length === 0 && sent > 0,
    run,
    agents: o.agents,
    processes: results.length,
    pairs: pairs.length,
    rate_per_pair: o.rate,
    duration_s: o.durationMs / 1000,
    sent,
    delivered,
    delivery_ratio: sent ? delivered / sent : 0,
    rtt_ms: rtt,
    signature_failures: signatureFailures,
    messages_per_second: elapsed > 0 ? (delivered * 2) / elapsed : 0,
    mesh_formed_ms: Math.max(0, ...results.map((r) => r.mesh_formed_ms)),
    per_pair: pairs.map((p) => ({
      a: p.a,
      b: p.b,
      sent: p.sent,
      delivered: p.delivered,
      rtt_ms: percentiles(p.rtts),
    })),
    thresholds: t,
    failures: failures.length || sent > 0 ? failures : ['no ping was sent'],
  };
}
