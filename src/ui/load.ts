import type { ChalkInstance } from 'chalk';
import type { ConfigFlags } from '../cli/options.js';
import type { LoadReport, Percentiles } from '../ops/agent/load.js';
import type { SignalingLoadReport } from '../ops/agent/signaling-load.js';
import { formatMs } from './units.js';

export interface LoadFlags extends ConfigFlags {
  worker?: boolean;
  signalingOnly?: boolean;
  sourceAddresses?: string;
  inflight?: string;
  agents: string;
  processes: string;
  duration: string;
  rate: string;
  pingTimeout: string;
  minDelivery: string;
  formTimeout: string;
  maxRttP95: string;
  signaling?: string;
  stun?: string;
  loopback?: boolean;
  insecure?: boolean;
  stage?: string;
  stateDir?: string;
  json?: boolean;
}

const rtt = (p: Percentiles) => `p50 ${formatMs(p.p50)}, p95 ${formatMs(p.p95)}, p99 ${formatMs(p.p99)}`;
const pct = (d: number, s: number) => (s ? `${(Math.floor((d / s) * 10_000) / 100).toFixed(2)} %` : '-');

/** `ifmesh load` for people: the verdict, the totals, then the pairs (the worst first, at most 10). */
export function renderLoad(r: LoadReport, c: ChalkInstance): string {
  const worst = [...r.per_pair]
    .sort(
      (x, y) =>
        x.delivered / (x.sent || 1) - y.delivered / (y.sent || 1) ||
        (y.rtt_ms.p95 ?? 0) - (x.rtt_ms.p95 ?? 0),
    )
    .slice(0, 10);
  return [
    `${r.ok ? c.green('✓ load passed') : c.red('✗ load failed')}: ${r.agents} agents in ${r.processes} process(es), ${r.pairs} pairs, ${r.rate_per_pair}/s each for ${r.duration_s} s`,
    `  delivered ${r.delivered} of ${r.sent} (${pct(r.delivered, r.sent)}), RTT ${rtt(r.rtt_ms)}`,
    `  ${Math.round(r.messages_per_second)} signed messages/s, ${r.signature_failures} signature failures, mesh formed in ${formatMs(r.mesh_formed_ms)}`,
    ...(worst.length
      ? [
          c.dim(
            `  pairs${r.per_pair.length > worst.length ? ` (the ${worst.length} worst of ${r.per_pair.length})` : ''}:`,
          ),
        ]
      : []),
    ...worst.map((p) =>
      c.dim(
        `    ${p.a} ↔ ${p.b}: ${p.delivered}/${p.sent} (${pct(p.delivered, p.sent)}), RTT ${rtt(p.rtt_ms)}`,
      ),
    ),
    ...r.failures.map((f) => c.red(`  ${f}`)),
  ].join('\n');
}

/** `ifmesh load --signaling-only` for people: the verdict, registrations, then the relay. */
export function renderSignalingLoad(r: SignalingLoadReport, c: ChalkInstance): string {
  return [
    `${r.ok ? c.green('✓ signaling load passed') : c.red('✗ signaling load failed')}: ${r.agents} agents in ${r.processes} process(es) on ${r.signaling_urls} signaling URL(s)${r.source_addresses ? ` from ${r.source_addresses} source addresses` : ''}`,
    `  registered ${r.registered} of ${r.agents} in ${formatMs(r.register_ms)} (${Math.round(r.registrations_per_second)}/s), latency ${rtt(r.registration_ms)}; sockets open in ${formatMs(r.connect_ms)}`,
    r.sent
      ? `  relayed ${r.delivered} of ${r.sent} (${pct(r.delivered, r.sent)}) over ${r.pairs} pairs at ${r.rate_per_pair}/s each, one-way ${rtt(r.relay_ms)}, ${Math.round(r.messages_per_second)} messages/s`
      : `  held for ${r.duration_s} s${r.disconnected ? '' : ', none dropped'}`,
    ...r.failures.map((f) => c.red(`  ${f}`)),
  ].join('\n');
}
