import type { ChalkInstance } from 'chalk';
import type { ExchangeReport } from '../ops/agent/exchange.js';

/** `verify --message-exchange` for people. */
export function renderExchange(r: ExchangeReport, c: ChalkInstance): string {
  return [
    `${r.ok ? c.green('✓ message exchange passed') : c.red('✗ message exchange failed')}: ${r.agents} agents, ${r.pairs} pairs`,
    `  delivered ${r.pongs_received}/${r.pings_sent} (${(r.delivery_ratio * 100).toFixed(2)} %), RTT p50 ${r.rtt_ms.p50?.toFixed(2) ?? '-'} ms, p95 ${r.rtt_ms.p95?.toFixed(2) ?? '-'} ms`,
    `  ${Math.round(r.messages_per_second)} signed messages/s, ${r.signature_failures} signature failures, mesh formed in ${r.mesh_formed_ms} ms`,
    ...r.failures.map((f) => c.red(`  ${f}`)),
  ].join('\n');
}
