import type { ChalkInstance } from 'chalk';
import type { ConfigFlags } from '../cli/options.js';
import type { ExchangeReport } from '../ops/agent/exchange.js';
import { STEP_TITLES, type VerifyReport } from '../ops/verify/deployment.js';
import { MARK as PROGRESS_MARK } from './progress.js';
import { formatDuration, formatMs, formatPercent } from './units.js';

export interface VerifyFlags extends ConfigFlags {
  messageExchange?: boolean;
  deploymentId?: string;
  retries: string;
  interval: string;
  witness?: string;
  agents: string;
  messages: string;
  signaling?: string;
  stun?: string;
  loopback?: boolean;
  insecure?: boolean;
  timeout: string;
  maxRttP95: string;
  stateDir?: string;
  json?: boolean;
}

/** `verify --message-exchange` for people. */
export function renderExchange(r: ExchangeReport, c: ChalkInstance): string {
  return [
    `${r.ok ? c.green('✓ message exchange passed') : c.red('✗ message exchange failed')}: ${r.agents} agents, ${r.pairs} pairs`,
    `  delivered ${r.pongs_received}/${r.pings_sent} (${formatPercent(r.delivery_ratio, 2)}), RTT p50 ${formatMs(r.rtt_ms.p50)}, p95 ${formatMs(r.rtt_ms.p95)}`,
    `  ${Math.round(r.messages_per_second)} signed messages/s, ${r.signature_failures} signature failures, mesh formed in ${formatDuration(r.mesh_formed_ms)}`,
    ...r.failures.map((f) => c.red(`  ${f}`)),
  ].join('\n');
}

const MARK = { ...PROGRESS_MARK, skipped: '-' } as const;

/** `verify` for people: one line per step (but those progress printed), then the verdict with the trace id. */
export function renderVerify(
  r: VerifyReport,
  c: ChalkInstance,
  shown: ReadonlySet<string> = new Set(),
): string {
  const paint = { ok: c.green, warn: c.yellow, fail: c.red, skipped: c.dim };
  const id = r.deployment_id ? ` (ID: ${r.deployment_id})` : '';
  return [
    ...r.steps.flatMap((s, i) =>
      shown.has(STEP_TITLES[s.name])
        ? []
        : [
            `${paint[s.status](MARK[s.status])} ${i + 1}. ${STEP_TITLES[s.name]}${c.dim(` — ${s.detail}${s.attempts > 1 ? ` (attempt ${s.attempts})` : ''}`)}`,
          ],
    ),
    r.ok
      ? c.green(`deployment verified${id}, trace ${r.trace_id}`)
      : c.red(`deployment verification failed${id}, trace ${r.trace_id}`),
  ].join('\n');
}
