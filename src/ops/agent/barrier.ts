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
