/**
 * Remembers (sender, nonce) pairs for as long as their timestamps are inside the skew window; older
 * messages are refused by timestamp, so they need no memory. The cache is bounded: when it is full,
 * the oldest entry is dropped and its timestamp becomes a low-water mark below which every message
 * is refused, so that eviction can never re-open a replay.
 */
export class ReplayWindow {
  private readonly seen = new Map<string, number>();
  private lowWaterMs = Number.NEGATIVE_INFINITY;

  constructor(
    readonly skewMs: number,
    readonly capacity: number,
  ) {
    if (!(skewMs > 0) || !(capacity > 0)) throw new RangeError('skewMs and capacity must be positive');
  }

  /** 'ok' records the nonce; anything else leaves the cache unchanged. */
  check(from: string, nonce: string, tsMs: number, nowMs: number): 'ok' | 'replayed' | 'outside_window' {
    if (Math.abs(nowMs - tsMs) > this.skewMs) return 'outside_window';
    if (tsMs <= this.lowWaterMs) return 'outside_window';
    const key = `${from}\u0000${nonce}`;
    if (this.seen.has(key)) return 'replayed';
    this.expire(nowMs);
    if (this.seen.size >= this.capacity) {
      const [oldestKey, oldestTs] = this.seen.entries().next().value as [string, number];
      this.seen.delete(oldestKey);
      this.lowWaterMs = Math.max(this.lowWaterMs, oldestTs);
      if (tsMs <= this.lowWaterMs) return 'outside_window';
    }
    this.seen.set(key, tsMs);
    return 'ok';
  }

  get size(): number {
    return this.seen.size;
  }

  // Insertion order is close to timestamp order; stop at the first entry still inside the window.
  private expire(nowMs: number): void {
    for (const [key, ts] of this.seen) {
      if (nowMs - ts <= this.skewMs) break;
      this.seen.delete(key);
    }
  }
}
