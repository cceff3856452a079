import type { Dispatcher } from 'undici';
import { listSpools, type SpoolInfo } from '../../clients/spool.js';
import { WitnessClient } from '../../clients/witness.js';
import type { KeyChange } from '../../clients/witness-checkpoint.js';
import type { StateDir } from '../../state/state-dir.js';

export interface SpoolReport {
  dir: string;
  spools: (SpoolInfo & { flushed?: boolean })[];
  pending_events: number;
  /** The witness presented a key other than the one held for its URL: nothing was sent to it. */
  key_changed: KeyChange | null;
}

/** Lists what waits for the witness; with `flush`, replays every spool no live process holds. */
export async function spoolStatus(opts: {
  dir: string;
  flush: boolean;
  url?: string | undefined;
  apiKey?: string | undefined;
  state?: StateDir | undefined;
  timeoutMs?: number;
  /** The flush's HTTP (ctx.dispatcher: trusts --ca / IFMESH_CA_FILE). */
  dispatcher?: Dispatcher | undefined;
}): Promise<SpoolReport> {
  let spools: SpoolReport['spools'] = await listSpools(opts.dir);
  let keyChanged: KeyChange | null = null;
  if (opts.flush) {
    for (const s of spools) {
      if (s.locked_by !== null || s.pending_events === 0) continue;
      const client = new WitnessClient({
        url: opts.url!,
        apiKey: opts.apiKey!,
        producer: s.producer,
        spoolDir: opts.dir,
        state: opts.state,
        dispatcher: opts.dispatcher,
        // No point waiting out the timeout: nothing goes to that witness until its key is trusted.
        onKeyChanged: (change) => {
          keyChanged = change;
          void client.close(0);
        },
      });
      const done = await client.flush(opts.timeoutMs ?? 30_000);
      await client.close(1_000);
      s.flushed = done;
      if (keyChanged) break;
    }
    const after = new Map((await listSpools(opts.dir)).map((s) => [s.producer, s]));
    spools = spools.map((s) => ({
      ...s,
      ...(after.get(s.producer) ?? { pending_events: 0, pending_bytes: 0 }),
    }));
  }
  return {
    dir: opts.dir,
    spools,
    pending_events: spools.reduce((n, s) => n + s.pending_events, 0),
    key_changed: keyChanged,
  };
}
