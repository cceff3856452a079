/**
 * Remembers (sender, nonce) pairs for as long as their timestamps are inside the skew window; older
 * messages are refused by timestamp, so they need no memory. Each sender has a window of its own,
 * bounded by `capacity`: when a sender's window is full, its oldest entry is dropped and that entry's
 * timestamp becomes the sender's low-water mark, below which every message from that sender is
 * refused, so that eviction can never re-open a replay. Per sender, because a shared window let one
 * peer's future-dated messages raise the mark for everyone and make other peers' valid messages
 * `stale_timestamp`. Only senders whose signature verified reach this (MessageVerifier), so the
 * number of windows is bounded by the peers an agent has keys for.
 */
export class ReplayWindow {
  private readonly senders = new Map<string, SenderWindow>();

  constructor(
    readonly skewMs: number,
    readonly capacity: number,
  ) {
    if (!(skewMs > 0) || !(capacity > 0)) throw new RangeError('skewMs and capacity must be positive');
  }

  /** 'ok' records the nonce; anything else leaves the cache unchanged. */
  check(from: string, nonce: string, tsMs: number, nowMs: number): 'ok' | 'replayed' | 'outside_window' {
    if (Math.abs(nowMs - tsMs) > this.skewMs) return 'outside_window';
    let w = this.senders.get(from);
    if (!w) {
      w = { seen: new Map(), lowWaterMs: Number.NEGATIVE_INFINITY };
      this.senders.set(from, w);
    }
    if (tsMs <= w.lowWaterMs) return 'outside_window';
    if (w.seen.has(nonce)) return 'replayed';
    this.expire(w, nowMs);
    if (w.seen.size >= this.capacity) {
      const [oldestNonce, oldestTs] = w.seen.entries().next().value as [string, number];
      w.seen.delete(oldestNonce);
      w.lowWaterMs = Math.max(w.lowWaterMs, oldestTs);
      if (tsMs <= w.lowWaterMs) return 'outside_window';
    }
    w.seen.set(nonce, tsMs);
    return 'ok';
  }

  /** Nonces remembered, over every sender. */
  get size(): number {
    let n = 0;
    for (const w of this.senders.values()) n += w.seen.size;
    return n;
  }

  // Insertion order is close to timestamp order; stop at the first entry still inside the window.
  private expire(w: SenderWindow, nowMs: number): void {
    for (const [nonce, ts] of w.seen) {
      if (nowMs - ts <= this.skewMs) break;
      w.seen.delete(nonce);
    }
  }
}

interface SenderWindow {
  seen: Map<string, number>;
  lowWaterMs: number;
}
