// Gathers the calls made within one turn of the event loop and runs them as one operation: when
// thousands of agents register at once, their Redis claims go as a few script calls instead of one
// round trip (and one script start in Redis) each. Items keep their order, which is the order the
// separate calls would have reached Redis on their one connection.

export class TickBatch<I, O> {
  private queue: { item: I; resolve: (o: O) => void; reject: (err: unknown) => void }[] = [];
  private scheduled = false;

  /**
   * `run` gets the items in call order and answers one output per item, in the same order; a throw
   * (or a missing answer) fails every call of that batch. At most `max` items go to one run.
   */
  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly max = 256,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.max) this.flush(this.max);
      else if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate, not a microtask: the frames read in the same poll phase are all in by then.
        setImmediate(() => {
          this.scheduled = false;
          while (this.queue.length > 0) this.flush(this.max);
        });
      }
    });
  }

  private flush(n: number): void {
    const batch = this.queue.splice(0, n);
    const items = batch.map((b) => b.item);
    // A run that throws before its promise exists fails its batch too, not the timer.
    new Promise<O[]>((r) => r(this.run(items))).then(
      (out) => {
        for (const [i, b] of batch.entries()) {
          if (i < out.length) b.resolve(out[i]!);
          else b.reject(new Error(`batch answered ${out.length} of ${batch.length} items`));
        }
      },
      (err: unknown) => {
        for (const b of batch) b.reject(err);
      },
    );
  }
}
