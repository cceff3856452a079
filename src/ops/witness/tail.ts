// `witness tail`: the newest events, then (--follow) new ones as they land, polling until aborted.
import type { Dispatcher } from 'undici';
import type { Clock } from '../../util/clock.js';
import { runWitnessQuery } from './query.js';

type WitnessEvent = Record<string, unknown>;

export interface TailOptions {
  url: string;
  /** The query body (filters, since, limit). */
  base: Record<string, unknown>;
  token: string | undefined;
  dispatcher?: Dispatcher | undefined;
  /** How many of the first page's events to print. */
  lines: number;
  print(e: WitnessEvent): void;
}

/** Tail's state between polls: the ids printed and the newest timestamp seen. */
export interface TailCursor {
  seen: Set<unknown>;
  newest: number;
}

/** The first page: its last `lines` events to print, and the cursor --follow goes on from. */
export async function tailWitness(o: TailOptions): Promise<{ last: WitnessEvent[]; cursor: TailCursor }> {
  const first = await runWitnessQuery({ url: o.url, body: o.base, token: o.token, dispatcher: o.dispatcher });
  const cursor: TailCursor = { seen: new Set(), newest: 0 };
  for (const e of first.results) {
    cursor.seen.add(e.id);
    cursor.newest = Math.max(cursor.newest, Date.parse(String(e.timestamp)) || 0);
  }
  return { last: first.results.slice(-o.lines), cursor };
}

/** Polls every `intervalMs` until `signal` aborts, printing events not printed yet; a failed poll is warned. */
export async function followWitness(
  o: TailOptions & { intervalMs: number; clock: Clock; signal: AbortSignal; warn(message: string): void },
  cursor: TailCursor,
): Promise<void> {
  // Late events may carry older timestamps: look back 10 s and skip ids already printed.
  while (!o.signal.aborted) {
    await o.clock.sleep(o.intervalMs, o.signal).catch(() => {});
    if (o.signal.aborted) break;
    const from = new Date(Math.max(0, cursor.newest - 10_000)).toISOString();
    const page = await runWitnessQuery({
      url: o.url,
      body: { ...o.base, time_range: { from, to: 'now' } },
      token: o.token,
      dispatcher: o.dispatcher,
    }).catch((err) => {
      o.warn((err as Error).message);
      return undefined;
    });
    for (const e of page?.results ?? []) {
      if (cursor.seen.has(e.id)) continue;
      cursor.seen.add(e.id);
      if (cursor.seen.size > 100_000) cursor.seen.clear();
      cursor.newest = Math.max(cursor.newest, Date.parse(String(e.timestamp)) || 0);
      o.print(e);
    }
  }
}
