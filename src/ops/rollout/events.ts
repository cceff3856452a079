// Every step of a rollout run goes to the witness under one trace id, through the spooling client (a
// down witness never blocks a rollback: its events wait in the spool).
import { randomUUID } from 'node:crypto';
import type { MeshConfig } from '../../config/load.js';
import type { StateDir } from '../../state/state-dir.js';
import { openWitness } from '../events.js';

export interface RunEvents {
  trace_id: string;
  log(event: string, fields: Record<string, unknown>): void;
  close(): Promise<void>;
}

export function runEvents(
  config: Pick<MeshConfig, 'witnessUrl' | 'witnessApiKey'>,
  state: StateDir,
  producer: string,
  traceId: string = randomUUID(),
): RunEvents {
  const client = openWitness(
    { url: config.witnessUrl, apiKey: config.witnessApiKey, state },
    `${producer}-${traceId.slice(0, 8)}`,
    {},
  );
  return {
    trace_id: traceId,
    log: (event, fields) => client?.log({ event, trace_id: traceId, ...fields }),
    close: async () => {
      await client?.close(1_500);
    },
  };
}
