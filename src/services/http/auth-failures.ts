// Failed admin authentications are audited, but whoever can reach the port must not be able to
// write the permanent audit log at will: 500 unauthenticated calls once made 500 entries in under a
// second. A token bucket per remote address and one for everyone decide which failures get an entry
// of their own; the others are only counted, and the count goes into the next entry, or into one
// summary when the flood stops. The caller still answers every one of them 401 (CONTRACT §1) and
// still counts it in its metrics: only the audit writes are limited.

export interface AuthFailureLimiterOptions {
  /** Entries one remote address may cause at once … */
  burst?: number;
  /** … and one more per this many milliseconds. */
  refillMs?: number;
  /** Entries all remotes together may cause at once, and one more per globalRefillMs. */
  globalBurst?: number;
  globalRefillMs?: number;
  /** Remote addresses tracked; the least recently seen is forgotten beyond this. */
  maxRemotes?: number;
  /** This long after a first suppressed failure, `onSummary` gets the count (unless an entry took it). */
  summaryMs?: number;
  onSummary?: (suppressed: number) => void;
  now?: () => number;
}

export type AuthFailureVerdict =
  /** Write an entry; `suppressed` failures since the last entry went without one. */
  { audit: true; suppressed: number } | { audit: false };

interface Bucket {
  tokens: number;
  at: number;
}

export class AuthFailureLimiter {
  private readonly remotes = new Map<string, Bucket>();
  private readonly global: Bucket;
  private suppressed = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly o: Required<Omit<AuthFailureLimiterOptions, 'onSummary'>> &
    Pick<AuthFailureLimiterOptions, 'onSummary'>;

  constructor(o: AuthFailureLimiterOptions = {}) {
    this.o = {
      burst: 5,
      refillMs: 60_000,
      globalBurst: 20,
      globalRefillMs: 5_000,
      maxRemotes: 10_000,
      summaryMs: 60_000,
      now: Date.now,
      ...o,
    };
    this.global = { tokens: this.o.globalBurst, at: this.o.now() };
  }

  private take(b: Bucket, burst: number, refillMs: number, now: number): boolean {
    const refill = Math.floor((now - b.at) / refillMs);
    if (refill > 0) {
      b.tokens = Math.min(burst, b.tokens + refill);
      b.at = b.tokens === burst ? now : b.at + refill * refillMs;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** One failed authentication from `remote`: audit it, or count it as suppressed. */
  failure(remote: string): AuthFailureVerdict {
    const now = this.o.now();
    let b = this.remotes.get(remote);
    if (b) this.remotes.delete(remote);
    else {
      b = { tokens: this.o.burst, at: now };
      if (this.remotes.size >= this.o.maxRemotes) {
        const oldest = this.remotes.keys().next().value;
        if (oldest !== undefined) this.remotes.delete(oldest);
      }
    }
    // Map order is recency: re-inserted on every failure.
    this.remotes.set(remote, b);
    // The remote's own bucket first, so one noisy address does not use up everyone's share.
    if (
      this.take(b, this.o.burst, this.o.refillMs, now) &&
      this.take(this.global, this.o.globalBurst, this.o.globalRefillMs, now)
    ) {
      const suppressed = this.suppressed;
      this.suppressed = 0;
      clearTimeout(this.timer);
      this.timer = undefined;
      return { audit: true, suppressed };
    }
    this.suppressed += 1;
    if (!this.timer && this.o.onSummary) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        const n = this.suppressed;
        this.suppressed = 0;
        if (n > 0) this.o.onSummary?.(n);
      }, this.o.summaryMs);
      this.timer.unref();
    }
    return { audit: false };
  }

  /** Stops the summary timer (the count not yet reported is returned, for a last entry). */
  dispose(): number {
    clearTimeout(this.timer);
    this.timer = undefined;
    const n = this.suppressed;
    this.suppressed = 0;
    return n;
  }
}
