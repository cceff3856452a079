// Events a maintenance procedure (rotate-keys, certs, maintenance) logs to IF.witness: through the
// spooling client, so an unreachable witness delays the audit trail but never loses it.
import { WitnessClient } from '../clients/witness.js';
import type { WitnessEvent } from '../protocol/witness.js';
import { statePaths } from '../state/state-dir.js';
import type { OpContext } from './shared.js';

export interface WitnessTarget {
  url: string;
  apiKey: string;
  stateDir: string;
  /** Fields put on every event logged through this target (a failover's `failover_id`). */
  tags?: Partial<WitnessEvent>;
}

/** Logs `events` in order and waits (bounded) for them to be sent or spooled. No target: a no-op. */
export async function logEvents(
  target: WitnessTarget | undefined,
  producer: string,
  events: WitnessEvent[],
  ctx: Pick<OpContext, 'dispatcher'>,
): Promise<void> {
  if (!target?.apiKey || events.length === 0) return;
  const client = new WitnessClient({
    url: target.url,
    apiKey: target.apiKey,
    producer,
    spoolDir: statePaths(target.stateDir).spool,
    stateDir: target.stateDir,
    dispatcher: ctx.dispatcher,
  });
  for (const e of events) client.log({ ...target.tags, ...e } as WitnessEvent);
  await client.close(5_000);
}
