// ifmesh load --signaling-only: the signaling servers under load without WebRTC. N agents, spread
// over several processes (and loopback source addresses), open sockets, and once every process has
// them open they register with signed proofs all at once (so the registration rate is the servers',
// not the load side's TCP set-up); then they hold for the duration, or relay messages through the
// servers at a rate per pair. The report merges the processes: registrations (rate, latency
// percentiles), relay delivery and one-way latency percentiles, sockets the servers dropped.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../util/clock.js';
import { Barrier, party, tickProgress } from './barrier.js';
import { type Percentiles, percentiles } from './load.js';
import type { ProcessHooks } from './load-process.js';
import type { SignalingWorkerResult, SignalingWorkerSpec } from './signaling-load-worker.js';

export interface SignalingLoadThresholds {
  delivery_ratio: number;
  relay_p95_ms: number;
}

export interface SignalingLoadOptions
  extends Omit<
      SignalingWorkerSpec,
      'mode' | 'run' | 'from' | 'to' | 'concurrency' | 'meshSize' | 'nonceRenewMs'
    >,
    Partial<Pick<SignalingWorkerSpec, 'run' | 'concurrency' | 'meshSize' | 'nonceRenewMs'>> {
  agents: number;
  processes: number;
  thresholds: SignalingLoadThresholds;
  clock?: Clock;
  signal?: AbortSignal | undefined;
  /** Runs one process's share: here (runSignalingWorker) or in a child (launchSignalingWorkerProcess). */
  launch(spec: SignalingWorkerSpec, hooks: ProcessHooks): Promise<SignalingWorkerResult>;
  /**
   * Called once every process's agents are registered, before holding or relaying starts; the run
   * waits for it (a benchmark measures the servers while the agents are held).
   */
  onRegistered?: (r: { registered: number; register_ms: number }) => unknown;
  onProgress?: (line: string) => void;
}

export interface SignalingLoadReport {
  ok: boolean;
  mode: 'signaling-only';
  run: string;
  agents: number;
  processes: number;
  signaling_urls: number;
  source_addresses: number;
  connected: number;
  registered: number;
  /** The slowest process's time to open and greet its sockets, and to have its registrations answered. */
  connect_ms: number;
  register_ms: number;
  registrations_per_second: number;
  registration_ms: Percentiles;
  pairs: number;
  rate_per_pair: number;
  duration_s: number;
  sent: number;
  delivered: number;
  delivery_ratio: number;
  /** One-way, sender to receiver through the server. */
  relay_ms: Percentiles;
  messages_per_second: number;
  disconnected: number;
  thresholds: SignalingLoadThresholds;
  failures: string[];
}

/** Contiguous shares of whole pairs (agents 2k, 2k+1 in one process), as even as they come. */
export function splitPairs(agents: number, processes: number): Array<[number, number]> {
  const pairs = Math.floor(agents / 2);
  return Array.from({ length: processes }, (_, p) => {
    const from = 2 * Math.floor((p * pairs) / processes);
    const to = p === processes - 1 ? agents : 2 * Math.floor(((p + 1) * pairs) / processes);
    return [from, to] as [number, number];
  }).filter(([from, to]) => to > from);
}

export async function runSignalingLoad(o: SignalingLoadOptions): Promise<SignalingLoadReport> {
  const run = o.run ?? randomBytes(4).toString('hex');
  const ranges = splitPairs(o.agents, o.processes);
  const progress = o.onProgress ?? (() => {});
  const secs = Math.round(o.durationMs / 1000);
  let connectMs = 0;
  let registerMs = 0;
  const done = ranges.map(() => ({ registered: 0 }));
  const opened = new Barrier(ranges.length, () =>
    progress(`sockets open in ${Math.round(connectMs)} ms; registering ${o.agents} agents`),
  );
  const registered = new Barrier(ranges.length, async () => {
    const r = { registered: done.reduce((n, x) => n + x.registered, 0), register_ms: registerMs };
    progress(
      `${r.registered} of ${o.agents} registered in ${Math.round(registerMs)} ms; ${o.rate ? `relaying ${o.rate}/s on each pair` : 'holding'} for ${secs} s`,
    );
    await o.onRegistered?.(r);
  });
  const finished = new Barrier(ranges.length);
  const tick = tickProgress(ranges.length, secs, o.onProgress);
  progress(
    `${o.agents} agents in ${ranges.length} process(es) opening sockets to ${o.signalingUrls.length} signaling URL(s)`,
  );
  const results = await Promise.all(
    ranges.map(([from, to], i) => {
      const me = party([opened, registered, finished]);
      const spec: SignalingWorkerSpec = {
        mode: 'signaling',
        run,
        from,
        to,
        signalingUrls: o.signalingUrls,
        sourceAddresses: o.sourceAddresses,
        rejectUnauthorized: o.rejectUnauthorized,
        ca: o.ca,
        concurrency: o.concurrency ?? 100,
        inflight: o.inflight,
        meshSize: o.meshSize ?? 10,
        nonceRenewMs: o.nonceRenewMs ?? 10_000,
        formTimeoutMs: o.formTimeoutMs,
        durationMs: o.durationMs,
        rate: o.rate,
        pingTimeoutMs: o.pingTimeoutMs,
      };
      return o
        .launch(spec, {
          ready: (ms) => {
            connectMs = Math.max(connectMs, ms);
            return me.arrive(opened);
          },
          registered: (r) => {
            done[i] = r;
            registerMs = Math.max(registerMs, r.register_ms);
            return me.arrive(registered);
          },
          tick: (t) => tick(i, t),
          finished: () => me.arrive(finished),
        })
        .finally(() => me.leave());
    }),
  );
  if (registered.error) throw registered.error;
  return mergeSignaling(run, o, results);
}

function mergeSignaling(
  run: string,
  o: SignalingLoadOptions,
  results: SignalingWorkerResult[],
): SignalingLoadReport {
  const sum = (f: (r: SignalingWorkerResult) => number) => results.reduce((n, r) => n + f(r), 0);
  const max = (f: (r: SignalingWorkerResult) => number) => Math.max(0, ...results.map(f));
  const registered = sum((r) => r.registered);
  const registerMs = max((r) => r.register_ms);
  const sent = sum((r) => r.sent);
  const delivered = sum((r) => r.delivered);
  const elapsed = max((r) => r.elapsed_s);
  const disconnected = sum((r) => r.disconnected);
  const relay = percentiles(results.flatMap((r) => r.relay_lat));
  const t = o.thresholds;
  const errors = [...new Set(results.flatMap((r) => r.errors))];
  const failures = [
    ...(registered < o.agents
      ? [
          `${o.agents - registered} of ${o.agents} agents not registered${errors.length ? `: ${errors[0]}` : ''}`,
        ]
      : []),
    ...errors.slice(registered < o.agents ? 1 : 0, 5),
    ...(disconnected ? [`${disconnected} registered socket(s) closed by the server while held`] : []),
    ...(sent && delivered / sent < t.delivery_ratio
      ? [`delivery ${((delivered / sent) * 100).toFixed(2)} % < ${(t.delivery_ratio * 100).toFixed(1)} %`]
      : []),
    ...((relay.p95 ?? 0) > t.relay_p95_ms
      ? [`relay p95 ${relay.p95!.toFixed(1)} ms > ${t.relay_p95_ms} ms`]
      : []),
  ];
  return {
    ok: failures.length === 0,
    mode: 'signaling-only',
    run,
    agents: o.agents,
    processes: results.length,
    signaling_urls: o.signalingUrls.length,
    source_addresses: o.sourceAddresses.length,
    connected: sum((r) => r.connected),
    registered,
    connect_ms: Math.round(max((r) => r.connect_ms)),
    register_ms: Math.round(registerMs * 10) / 10,
    registrations_per_second: registerMs > 0 ? (registered * 1000) / registerMs : 0,
    registration_ms: percentiles(results.flatMap((r) => r.registration_lat)),
    pairs: sum((r) => r.pairs),
    rate_per_pair: o.rate,
    duration_s: o.durationMs / 1000,
    sent,
    delivered,
    delivery_ratio: sent ? delivered / sent : 1,
    relay_ms: relay,
    messages_per_second: elapsed > 0 ? delivered / elapsed : 0,
    disconnected,
    thresholds: t,
    failures,
  };
}
