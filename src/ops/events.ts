// Events a maintenance procedure (rotate-keys, certs, maintenance) logs to IF.witness: through the
// spooling client, so an unreachable witness delays the audit trail but never loses it.
import { httpRequest } from '../clients/http.js';
import { WitnessClient, type WitnessClientOptions } from '../clients/witness.js';
import type { WitnessEvent } from '../protocol/witness.js';
import type { StateDir } from '../state/state-dir.js';
import type { OpContext } from './shared.js';

export interface WitnessTarget {
  url: string;
  apiKey: string;
  state: StateDir;
  /** Fields put on every event logged through this target (a failover's `failover_id`). */
  tags?: Partial<WitnessEvent>;
}

/**
 * The one way an op opens a witness client: spooled under the state dir, checkpoints held there, on
 * the context's dispatcher and clock. No API key: no client (events are not logged).
 */
export function openWitness(
  target: { url: string; apiKey: string; state: StateDir } | undefined,
  producer: string,
  ctx: Partial<Pick<OpContext, 'dispatcher' | 'clock'>>,
  extra: Pick<WitnessClientOptions, 'onError' | 'onKeyChanged'> = {},
): WitnessClient | undefined {
  if (!target?.apiKey) return undefined;
  return new WitnessClient({
    url: target.url,
    apiKey: target.apiKey,
    producer,
    spoolDir: target.state.spool,
    state: target.state,
    ...(ctx.dispatcher ? { dispatcher: ctx.dispatcher } : {}),
    ...(ctx.clock ? { clock: ctx.clock } : {}),
    ...extra,
  });
}

/** Logs `events` in order and waits (bounded) for them to be sent or spooled. No target: a no-op. */
export async function logEvents(
  target: WitnessTarget | undefined,
  producer: string,
  events: WitnessEvent[],
  ctx: Pick<OpContext, 'dispatcher'> & Partial<Pick<OpContext, 'clock'>>,
): Promise<void> {
  const client = events.length ? openWitness(target, producer, ctx) : undefined;
  if (!client) return;
  for (const e of events) client.log({ ...target?.tags, ...e } as WitnessEvent);
  await client.close(5_000);
}

/**
 * One POST /api/query to the target's witness, with its API key: the HTTP status and, when it
 * answered 200, the events. A network error or the timeout throws; the caller decides what a
 * non-200 answer (503: a scan cut at the witness's time budget) means for it.
 */
export async function queryWitness(
  target: Pick<WitnessTarget, 'url' | 'apiKey'>,
  body: { query: Record<string, unknown>; time_range?: { from: string; to: string } },
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
  timeoutMs = 5_000,
): Promise<{ status: number; results: Record<string, unknown>[] | undefined }> {
  const r = await httpRequest(`${target.url.replace(/\/+$/, '')}/api/query`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { authorization: `Bearer ${target.apiKey}` },
    timeoutMs,
    dispatcher: ctx.dispatcher,
    signal: ctx.signal,
  });
  const results = r.status === 200 ? (r.json as { results?: Record<string, unknown>[] })?.results : undefined;
  return { status: r.status, results };
}
