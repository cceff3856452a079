import { randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { type IceServer, MeshAgent } from '../../agent/agent.js';
import { generateKeyPair } from '../../crypto/ed25519.js';
import type { WitnessEvent } from '../../protocol/witness.js';
import type { StateDir } from '../../state/state-dir.js';
import { formatMs, formatPercent } from '../../ui/units.js';
import { type Clock, systemClock } from '../../util/clock.js';
import { within } from '../../util/wait.js';
import { openWitness } from '../events.js';
import { percentiles } from './load.js';
import { EXCHANGE_THRESHOLDS } from './thresholds.js';

export interface ExchangeOptions {
  signalingUrls: string[];
  iceServers: IceServer[];
  agents: number;
  messages: number;
  loopbackOnly: boolean;
  formTimeoutMs: number;
  rejectUnauthorized: boolean;
  /** CAs for wss:// (ctx.tls.ca); default: the system's. */
  ca?: string[] | undefined;
  /** The temporary agents' witness client's HTTP (ctx.dispatcher, trusting the same CA). */
  dispatcher?: Dispatcher | undefined;
  events?: { log(e: WitnessEvent): void } | undefined;
  /** Where the temporary agents' events go when `events` is not given (`ifmesh verify --witness`). */
  witness?: { url: string; apiKey: string; state: StateDir } | undefined;
  onProgress?: (line: string) => void;
  clock?: Clock;
  /** The RTT p95 above which the exchange fails; the runbook's delivery target (100 ms) by default. */
  maxRttP95Ms?: number;
}

export interface ExchangeReport {
  ok: boolean;
  agents: number;
  pairs: number;
  pings_sent: number;
  pongs_received: number;
  delivery_ratio: number;
  rtt_ms: { p50: number | null; p95: number | null; max: number | null };
  signature_failures: number;
  messages_per_second: number;
  mesh_formed_ms: number;
  thresholds: { delivery_ratio: number; rtt_p95_ms: number; signature_failures: number };
  failures: string[];
}

export { EXCHANGE_THRESHOLDS };

/**
 * The runbook's test-message-exchange.js: temporary agents (in a mesh of their own, so production
 * agents never see them) join, exchange signed pings over every pair, and report.
 */
export async function messageExchange(o: ExchangeOptions): Promise<ExchangeReport> {
  const THRESHOLDS = { ...EXCHANGE_THRESHOLDS, rtt_p95_ms: o.maxRttP95Ms ?? EXCHANGE_THRESHOLDS.rtt_p95_ms };
  const run = randomBytes(4).toString('hex');
  const mesh = `verify-${run}`;
  const ids = Array.from({ length: o.agents }, (_, i) => `verify-${run}-${i + 1}`);
  const witness =
    !o.events && o.witness
      ? openWitness(o.witness, mesh, {
          clock: o.clock ?? systemClock,
          ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
        })
      : undefined;
  const agents = ids.map(
    (id) =>
      new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: o.signalingUrls,
        iceServers: o.iceServers,
        loopbackOnly: o.loopbackOnly,
        mesh,
        rejectUnauthorized: o.rejectUnauthorized,
        ca: o.ca,
        events: o.events ?? witness,
      }),
  );
  const failures: string[] = [];
  const t0 = performance.now();
  try {
    for (const a of agents) a.start();
    o.onProgress?.(`${o.agents} temporary agents joining mesh ${mesh}`);
    await Promise.all(
      agents.map((a) =>
        a.waitForPeers(
          ids.filter((p) => p !== a.id),
          o.formTimeoutMs,
        ),
      ),
    );
    const formed = performance.now() - t0;
    o.onProgress?.(`mesh formed in ${Math.round(formed)} ms; ${o.messages} signed pings per pair`);
    const rtts: number[] = [];
    let sent = 0;
    const t1 = performance.now();
    const pairs: Array<[MeshAgent, string]> = [];
    for (let i = 0; i < agents.length; i++)
      for (let j = i + 1; j < agents.length; j++) pairs.push([agents[i]!, ids[j]!]);
    await Promise.all(
      pairs.map(async ([a, peer]) => {
        const link = a.links.get(peer)!;
        for (let k = 0; k < o.messages; k++) {
          sent += 1;
          try {
            rtts.push(await link.ping(2_000));
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      }),
    );
    const elapsed = (performance.now() - t1) / 1000;
    const rtt = percentiles(rtts);
    const sigFailures = agents.reduce((n, a) => n + a.counters.signature_failures, 0);
    const report: ExchangeReport = {
      ok: false,
      agents: o.agents,
      pairs: pairs.length,
      pings_sent: sent,
      pongs_received: rtts.length,
      delivery_ratio: sent ? rtts.length / sent : 0,
      rtt_ms: { p50: rtt.p50, p95: rtt.p95, max: rtt.max },
      signature_failures: sigFailures,
      messages_per_second: elapsed > 0 ? (rtts.length * 2) / elapsed : 0,
      mesh_formed_ms: Math.round(formed),
      thresholds: THRESHOLDS,
      failures: [...new Set(failures)].slice(0, 10),
    };
    if (report.delivery_ratio < THRESHOLDS.delivery_ratio)
      report.failures.unshift(
        `delivery ${formatPercent(report.delivery_ratio, 2)} < ${formatPercent(THRESHOLDS.delivery_ratio)}`,
      );
    if ((report.rtt_ms.p95 ?? Number.POSITIVE_INFINITY) > THRESHOLDS.rtt_p95_ms)
      report.failures.unshift(`RTT p95 ${formatMs(report.rtt_ms.p95)} > ${formatMs(THRESHOLDS.rtt_p95_ms)}`);
    if (sigFailures > THRESHOLDS.signature_failures)
      report.failures.unshift(`${sigFailures} signature verification failure(s)`);
    report.ok = report.failures.length === 0;
    return report;
  } catch (err) {
    return {
      ok: false,
      agents: o.agents,
      pairs: (o.agents * (o.agents - 1)) / 2,
      pings_sent: 0,
      pongs_received: 0,
      delivery_ratio: 0,
      rtt_ms: { p50: null, p95: null, max: null },
      signature_failures: 0,
      messages_per_second: 0,
      mesh_formed_ms: Math.round(performance.now() - t0),
      thresholds: THRESHOLDS,
      failures: [(err as Error).message],
    };
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    // Bounded: what the witness has not acknowledged by then stays in the spool.
    await within(witness?.close(1_500), 2_000, o.clock ?? systemClock);
  }
}
