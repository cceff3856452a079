/**
 * A meeting point for the processes of a load run: `arrive` resolves once every party has arrived.
 * A party that ended early (its share failed, its process died) must still arrive, or the others
 * would wait for ever: `arriveOnce` lets its launcher arrive at every barrier it has not yet passed.
 */
export class Barrier {
  private arrived = 0;
  private open: () => void = () => {};
  readonly passed: Promise<void>;
  /** What onPass threw: the parties went on all the same, and the run reports it. */
  error: unknown;

  /** `onPass` runs once, when the last party arrives; everyone waiting goes on when it has settled. */
  constructor(
    private readonly parties: number,
    private readonly onPass?: () => unknown,
  ) {
    this.passed = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  arrive(): Promise<void> {
    if (++this.arrived === this.parties)
      void Promise.resolve()
        .then(this.onPass)
        .catch((err: unknown) => {
          this.error = err;
        })
        .then(this.open);
    return this.passed;
  }
}

/** One party's view of a set of barriers: arrives at each at most once, and at all left when it ends. */
export function party(barriers: Barrier[]): { arrive(b: Barrier): Promise<void>; leave(): void } {
  const pending = new Set(barriers);
  return {
    arrive(b) {
      if (!pending.delete(b)) return b.passed;
      return b.arrive();
    },
    leave() {
      for (const b of pending) void b.arrive();
      pending.clear();
    },
  };
}

/**
 * The progress line of a run's pinging or relaying: each process ticks about once a second; the
 * first process's tick prints the totals of all, at most once per second of the duration.
 */
export function tickProgress(
  processes: number,
  secs: number,
  onProgress: ((line: string) => void) | undefined,
): (i: number, t: { sent: number; delivered: number }) => void {
  const ticks = Array.from({ length: processes }, () => ({ sent: 0, delivered: 0 }));
  let reported = 0;
  return (i, t) => {
    ticks[i] = t;
    if (i !== 0 || !onProgress || reported >= secs) return;
    const sent = ticks.reduce((n, x) => n + x.sent, 0);
    const delivered = ticks.reduce((n, x) => n + x.delivered, 0);
    onProgress(`${++reported} s / ${secs} s: ${sent} sent, ${delivered} delivered`);
  };
}
