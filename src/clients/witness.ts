import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { IfmeshError } from '../errors.js';
import { MAX_BATCH, type WitnessEvent } from '../protocol/witness.js';
import type { StateDir } from '../state/state-dir.js';
import { type Clock, systemClock } from '../util/clock.js';
import { httpRequest } from './http.js';
import { Spool } from './spool.js';
import {
  type KeyChange,
  normalizeWitnessUrl,
  observeCheckpoint,
  WitnessKeyChangedError,
} from './witness-checkpoint.js';

/** Time as the client sees it: the part of the shared `Clock` it needs (a fake one in tests). */
export type ClientClock = Pick<Clock, 'now' | 'sleep'>;

export interface WitnessClientOptions {
  /** Base URL of IF.witness. */
  url: string;
  apiKey: string;
  /** Names this producer; its events keep their order and its spool file is its own. */
  producer: string;
  /** Where events wait while the witness is unreachable. */
  spoolDir: string;
  /** When set, the witness's key is checked against the one held here before events are sent to it,
   * and every new checkpoint is proven consistent with the one held for its origin. */
  state?: StateDir | undefined;
  dispatcher?: Dispatcher | undefined;
  timeoutMs?: number;
  batchSize?: number;
  /** How long events may wait in memory before a send. */
  lingerMs?: number;
  /**
   * Events held in memory while the spool cannot be written (disk full, I/O error, directory gone):
   * past this many, new events are refused (counted in `spoolStats.dropped`, reported through onError)
   * until the disk takes them again.
   */
  maxQueue?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  clock?: ClientClock;
  /** Overrides `clock.now` for timestamps (kept for callers that pass only a time source). */
  now?: () => number;
  onError?: (err: Error) => void;
  /** The witness at this URL answers under another key than the one held: events wait in the spool
   * until `ifmesh witness trust URL` accepts it. Called once per new key presented. */
  onKeyChanged?: (change: KeyChange) => void;
}

type SendOutcome = 'ok' | 'retry' | 'too_large' | 'rejected';
type Options = Required<
  Omit<WitnessClientOptions, 'state' | 'dispatcher' | 'onError' | 'onKeyChanged' | 'now'>
> &
  Pick<WitnessClientOptions, 'state' | 'dispatcher' | 'onError' | 'onKeyChanged'>;

/**
 * The witness client every part of ifmesh uses. `log()` never blocks and never throws: events are
 * batched and sent in order; when the witness is unreachable, answers 5xx or presents an unknown key
 * they are written to a durable spool and replayed, in order and before anything newer, once it
 * answers again. Each event carries an idempotency key, so a batch resent after an unacknowledged
 * commit is stored once.
 *
 * Every event of this process gets a sequence number; `settled` is how many of them, in order, the
 * witness acknowledged (201) or refused for good (4xx, dead-lettered). Events leave the client in
 * log order — the spool's, then memory's — so one counter says what `flush()` waits for.
 */
export class WitnessClient {
  private queue: Record<string, unknown>[] = [];
  private readonly spool: Spool;
  /** An attempt to open the spool in progress; it never rejects (a failure is a disk failure). */
  private opening: Promise<boolean> | undefined;
  /** Whether the spool has ever been opened (then `inherited` is known). */
  private opened = false;
  /** The last spool operation failed: events wait in memory (at most maxQueue) until one succeeds. */
  private diskDown: Error | undefined;
  private diskRetryMs = 0;
  private nextOpenAt = 0;
  private loop: Promise<void> | undefined;
  private closing = false;
  private stopped = false;
  private retryMs = 0;
  private batchSize: number;
  private sentSinceObserve = 0;
  /** Sequence numbers: events logged, and settled in order. */
  private logged = 0;
  private settled = 0;
  /** Events of earlier processes still at the head of the spool. */
  private inherited = 0;
  private rejectedSeqs: number[] = [];
  private reportedUpTo = 0;
  /** Whether the witness's key was checked since the last failure (a restarted witness may be re-keyed). */
  private keyChecked = false;
  private keyChange: KeyChange | undefined;
  private readonly now: () => number;
  private readonly clock: ClientClock;
  /** A wake-up is never lost: one that comes while the loop is busy makes its next idle return at once. */
  private woken = false;
  private idling: { reason: IdleReason; abort: AbortController } | undefined;
  /** Aborted by close(): cuts short whatever request the loop awaits. */
  private readonly halt = new AbortController();
  private inFlight = false;
  private waiters = new Set<() => void>();
  readonly stats = { sent: 0, spooled: 0, rejected: 0 };
  /**
   * `dropped`: events refused by log() while the spool was unwritable and memory full, or left in
   * memory at close with nowhere to go; `disk_errors`: spool operations that failed.
   */
  readonly spoolStats = { dropped: 0, disk_errors: 0 };
  private readonly o: Options;

  constructor(opts: WitnessClientOptions) {
    const { now, ...rest } = opts;
    this.o = {
      timeoutMs: 5_000,
      batchSize: 500,
      lingerMs: 50,
      maxQueue: 10_000,
      retryMinMs: 100,
      retryMaxMs: 5_000,
      clock: systemClock,
      ...rest,
      url: normalizeWitnessUrl(opts.url),
    };
    this.clock = this.o.clock;
    this.now = now ?? (() => this.clock.now());
    this.batchSize = Math.min(this.o.batchSize, MAX_BATCH);
    this.spool = new Spool(this.o.spoolDir, this.o.producer);
    if (!this.o.state) this.keyChecked = true;
  }

  /** Queues one event; fills in `timestamp` and an `idempotency_key` if absent. */
  log(event: WitnessEvent): void {
    if (this.stopped) {
      this.o.onError?.(
        new Error(`witness client for ${this.o.producer} is closed; event ${event.event} dropped`),
      );
      return;
    }
    if (this.diskDown && this.queue.length >= this.o.maxQueue) {
      // Memory is the only place left and it is full: refuse, loudly, rather than grow without end.
      this.spoolStats.dropped += 1;
      if (this.spoolStats.dropped === 1 || this.spoolStats.dropped % 1_000 === 0)
        this.o.onError?.(
          new Error(
            `witness spool unwritable (${this.diskDown.message}) and ${this.o.maxQueue} events wait in memory: ${this.spoolStats.dropped} event(s) dropped so far`,
          ),
        );
      return;
    }
    this.queue.push({
      ...event,
      timestamp: event.timestamp ?? new Date(this.now()).toISOString(),
      idempotency_key: event.idempotency_key ?? `${this.o.producer}:${randomUUID()}`,
    });
    this.logged += 1;
    this.start();
    const reason = this.idling?.reason;
    if (reason === 'empty' || (reason === 'linger' && this.queue.length >= this.batchSize)) this.wake();
  }

  /** Whether a batch is on its way to the witness and not yet answered. */
  get sending(): boolean {
    return this.inFlight;
  }

  /** The key change that holds events back, if the witness presents an unaccepted key. */
  get keyChanged(): KeyChange | undefined {
    return this.keyChange;
  }

  private start(): void {
    if (!this.opened) void this.openSpool();
    this.loop ??= this.run().catch((err) => {
      this.o.onError?.(err as Error);
    });
  }

  /** Opens the spool if it is not; false (and the disk marked down) when that fails. Never throws. */
  private openSpool(): Promise<boolean> {
    if (this.spool.isOpen) return Promise.resolve(true);
    this.opening ??= this.spool
      .open()
      .then(
        () => {
          if (!this.opened) this.inherited = this.spool.inherited;
          this.opened = true;
          this.diskUp();
          return true;
        },
        (err: unknown) => {
          this.diskFailed(err);
          return false;
        },
      )
      .finally(() => {
        this.opening = undefined;
      });
    return this.opening;
  }

  /** A spool operation failed: said once per outage, retried with backoff, events kept in memory. */
  private diskFailed(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.spoolStats.disk_errors += 1;
    this.diskRetryMs = Math.min(
      this.o.retryMaxMs,
      this.diskRetryMs ? this.diskRetryMs * 2 : this.o.retryMinMs,
    );
    this.nextOpenAt = this.clock.now() + this.diskRetryMs;
    if (!this.diskDown)
      this.o.onError?.(
        new Error(
          `witness spool ${this.spool.file} failed (${e.message}): events wait in memory (at most ${this.o.maxQueue}) until it works again`,
        ),
      );
    this.diskDown = e;
  }

  private diskUp(): void {
    if (this.diskDown) this.o.onError?.(new Error(`witness spool ${this.spool.file} works again`));
    this.diskDown = undefined;
    this.diskRetryMs = 0;
  }

  /**
   * Waits until every event logged before the call is acknowledged by the witness. True only then;
   * false at the timeout while any of them waits in the spool, in memory or in flight, and false
   * (once) when the witness refused some of them for good.
   */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    const mark = this.logged;
    this.start();
    if (!this.opened) await this.openSpool();
    if (this.settled < mark || this.inherited > 0) {
      const stop = new AbortController();
      const timeout = this.clock.sleep(timeoutMs, stop.signal).catch(() => {});
      let expired = false;
      void timeout.then(() => {
        expired = true;
        this.notify();
      });
      if (this.idling?.reason !== 'backoff') this.wake();
      try {
        while (!expired && !this.stopped && (this.settled < mark || this.inherited > 0)) {
          await new Promise<void>((resolve) => this.waiters.add(resolve));
        }
      } finally {
        stop.abort();
      }
      if (this.settled < mark || this.inherited > 0) return false;
    }
    const refused = this.rejectedSeqs.some((s) => s > this.reportedUpTo && s <= mark);
    this.reportedUpTo = Math.max(this.reportedUpTo, mark);
    this.rejectedSeqs = this.rejectedSeqs.filter((s) => s > mark);
    return !refused;
  }

  /**
   * Stops the sender: gives it `timeoutMs` to deliver, then cuts whatever it awaits short. Nothing
   * unacknowledged is lost: it is in the spool (fsync'd) when this resolves.
   */
  close(timeoutMs = 3_000): Promise<void> {
    this.closed ??= this.shutdown(timeoutMs);
    return this.closed;
  }

  private closed: Promise<void> | undefined;

  private async shutdown(timeoutMs: number): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    if (this.loop) await this.flush(timeoutMs);
    this.closing = true;
    this.wake();
    this.halt.abort();
    await this.loop;
    // What was delivered since the last look is checked once more, within what is left of the time.
    const left = deadline - this.clock.now();
    if (this.o.state && this.keyChecked && this.sentSinceObserve > 0 && left > 0) {
      await this.observeNow(null, Math.min(left, this.o.timeoutMs)).catch((err) =>
        this.o.onError?.(err as Error),
      );
    }
    // Events logged while closing are kept too: stopped is set only once memory is empty, or the
    // spool cannot take them (then what is lost is said, not hidden).
    while (this.queue.length > 0 && (await this.openSpool())) {
      if (!(await this.trySpill())) break;
    }
    this.stopped = true;
    if (this.queue.length > 0) {
      this.spoolStats.dropped += this.queue.length;
      this.o.onError?.(
        new Error(
          `witness client for ${this.o.producer} closed with ${this.queue.length} event(s) neither delivered nor spooled (${this.diskDown?.message ?? 'spool unavailable'}): lost`,
        ),
      );
      this.queue = [];
    }
    this.notify();
    await this.opening;
    await this.spool.close();
  }

  private wake(): void {
    this.woken = true;
    this.idling?.abort.abort();
  }

  private notify(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  /** Lines of the spool acknowledged or refused: earlier processes' first, then this one's, in order. */
  private settleSpooled(lines: number): void {
    const old = Math.min(lines, this.inherited);
    this.inherited -= old;
    this.settled += lines - old;
    this.notify();
  }

  private settleQueued(n: number): void {
    this.settled += n;
    this.notify();
  }

  /** Moves memory to the spool; on failure the events stay in memory, in order, and this throws. */
  private async spillQueue(): Promise<void> {
    if (this.queue.length === 0) return;
    if (!(await this.openSpool())) throw this.diskDown ?? new Error('spool unavailable');
    const events = this.queue;
    this.queue = [];
    try {
      await this.spool.append(events);
    } catch (err) {
      this.queue = [...events, ...this.queue];
      throw err;
    }
    this.diskUp();
    this.stats.spooled += events.length;
  }

  /** spillQueue, a failure noted instead of thrown: true when memory is on disk. */
  private async trySpill(): Promise<boolean> {
    try {
      await this.spillQueue();
      return true;
    } catch (err) {
      this.diskFailed(err);
      return false;
    }
  }

  /**
   * The sender. A failed spool operation never ends it: whatever the operation held stays in memory
   * (the batch in flight included), the disk is retried with backoff, and while it is down events go
   * from memory to the witness directly when nothing older waits on disk.
   */
  private async run(): Promise<void> {
    await this.openSpool();
    while (!this.closing) {
      try {
        await this.step();
      } catch (err) {
        this.diskFailed(err);
        await this.idle(this.diskRetryMs, 'backoff');
      }
    }
  }

  private async step(): Promise<void> {
    if (this.retryMs > 0) {
      await this.idle(this.retryMs, 'backoff');
      if (this.closing) return;
    }
    // A spool that could not be opened is tried again once its backoff has passed.
    if (!this.spool.isOpen && this.clock.now() >= this.nextOpenAt) await this.openSpool();
    if (!this.keyChecked) {
      // While the witness's key is unknown or refused, events wait on disk (in memory if it fails).
      if (this.spool.isOpen) await this.trySpill();
      await this.checkKey();
      return;
    }
    if (this.spool.pending) {
      // In an outage the newest events join the spool first, so that they are durable too.
      await this.trySpill();
      const { events, end, lines } = await this.spool.peek(this.batchSize);
      const outcome = events.length ? await this.send(events) : 'ok';
      if (outcome === 'ok' || outcome === 'rejected') {
        if (outcome === 'rejected') {
          const own = lines - Math.min(lines, this.inherited);
          await this.deadLetter(events, this.settled + 1, own);
        }
        // Acknowledged: settled whether or not the new offset reaches the disk (a later process
        // would resend those events, which their idempotency keys make harmless).
        await this.spool.advance(end).catch((err) => this.diskFailed(err));
        this.settleSpooled(lines);
      }
      return;
    }
    if (this.queue.length === 0) {
      await this.observe();
      if (this.closing) return;
      if (this.queue.length === 0 && this.keyChecked) await this.idle(60_000, 'empty');
      return;
    }
    if (this.queue.length < this.batchSize) {
      await this.idle(this.o.lingerMs, 'linger');
      if (this.closing) return;
    }
    const batch = this.queue.splice(0, this.batchSize);
    const outcome = await this.send(batch);
    if (outcome === 'retry') {
      // Everything not acknowledged moves to the spool, in order, before anything newer; if the
      // spool cannot take it, it goes back to the head of memory, the batch in flight first.
      this.queue = [...batch, ...this.queue];
      await this.trySpill();
    } else if (outcome === 'too_large') {
      this.queue.unshift(...batch);
    } else {
      if (outcome === 'rejected') await this.deadLetter(batch, this.settled + 1, batch.length);
      this.settleQueued(batch.length);
    }
  }

  private async idle(ms: number, reason: IdleReason): Promise<void> {
    // A flush does not cut a backoff short: that is the spacing an unhealthy witness gets.
    if ((this.woken && reason !== 'backoff') || this.closing) {
      this.woken = false;
      return;
    }
    const abort = new AbortController();
    this.idling = { reason, abort };
    try {
      await this.clock.sleep(ms, abort.signal);
    } catch {
      // woken
    } finally {
      this.idling = undefined;
      this.woken = false;
    }
  }

  private async send(events: Record<string, unknown>[]): Promise<SendOutcome> {
    let status: number;
    let message = '';
    this.inFlight = true;
    try {
      const res = await httpRequest(`${this.o.url}/api/log`, {
        method: 'POST',
        body: JSON.stringify(events),
        headers: { authorization: `Bearer ${this.o.apiKey}` },
        timeoutMs: this.o.timeoutMs,
        dispatcher: this.o.dispatcher,
        signal: this.halt.signal,
      });
      status = res.status;
      message = (res.json as { error?: { message?: string } })?.error?.message ?? '';
    } catch (err) {
      // Cut short by close(): not acknowledged, so it is resent later (its idempotency keys dedupe).
      if (this.halt.signal.aborted) return 'retry';
      return this.backoff(err as IfmeshError);
    } finally {
      this.inFlight = false;
    }
    if (status === 201) {
      this.retryMs = 0;
      this.batchSize = Math.min(this.o.batchSize, MAX_BATCH);
      this.stats.sent += events.length;
      this.sentSinceObserve += events.length;
      if (this.sentSinceObserve >= 5_000) await this.observe();
      return 'ok';
    }
    if (status === 413 && events.length > 1) {
      this.batchSize = Math.max(1, Math.floor(events.length / 2));
      return 'too_large';
    }
    if (status >= 500 || status === 408 || status === 429 || status === 401 || status === 403) {
      return this.backoff(new Error(`witness answered ${status}${message ? `: ${message}` : ''}`));
    }
    this.o.onError?.(
      new Error(
        `witness refused ${events.length} event(s) with ${status}: ${message}; kept in the rejected file`,
      ),
    );
    return 'rejected';
  }

  private backoff(err: Error): 'retry' {
    this.retryMs = Math.min(this.o.retryMaxMs, this.retryMs ? this.retryMs * 2 : this.o.retryMinMs);
    // The witness may come back re-keyed: check its key again before the next send.
    if (this.o.state) this.keyChecked = false;
    this.o.onError?.(err);
    return 'retry';
  }

  /** Keeps refused events beside the spool; `own` of them (the last ones) were logged by this process. */
  private async deadLetter(events: Record<string, unknown>[], firstSeq: number, own: number): Promise<void> {
    this.stats.rejected += events.length;
    for (let i = 0; i < own; i++) this.rejectedSeqs.push(firstSeq + i);
    const file = path.join(
      this.o.spoolDir,
      `${this.spool.producer.replace(/[^A-Za-z0-9._-]/g, '_')}.rejected.ndjson`,
    );
    try {
      await fs.appendFile(file, events.map((e) => `${JSON.stringify(e)}\n`).join(''), { mode: 0o600 });
    } catch (err) {
      // The witness refused them for good; without a disk they can only be reported.
      this.o.onError?.(
        new Error(
          `${events.length} refused event(s) could not be kept in ${file} (${(err as Error).message}): ${events
            .map((e) => String(e.event))
            .slice(0, 10)
            .join(', ')}`,
        ),
      );
    }
  }

  /** Before sending: is the witness at this URL the one whose key is held? */
  private async checkKey(): Promise<void> {
    try {
      await this.observeNow();
      this.keyChecked = true;
      this.keyChange = undefined;
      this.retryMs = 0;
    } catch (err) {
      if (this.halt.signal.aborted) return;
      if (err instanceof WitnessKeyChangedError) {
        const change = err.change;
        // Said once per key presented, not at every retry.
        if (this.keyChange?.presented_origin !== change.presented_origin) {
          this.o.onKeyChanged?.(change);
          this.o.onError?.(err);
        }
        this.keyChange = change;
        this.retryMs = this.o.retryMaxMs;
        return;
      }
      this.retryMs = Math.min(this.o.retryMaxMs, this.retryMs ? this.retryMs * 2 : this.o.retryMinMs);
      this.o.onError?.(err as Error);
      // A log that is not an extension of the held checkpoint is reported; the events still go.
      if ((err as IfmeshError).code === 'witness_inconsistent') this.keyChecked = true;
    }
  }

  private async observeNow(signal: AbortSignal | null = this.halt.signal, timeoutMs = this.o.timeoutMs) {
    const sent = this.sentSinceObserve;
    this.sentSinceObserve = 0;
    try {
      return await observeCheckpoint({
        url: this.o.url,
        state: this.o.state!,
        dispatcher: this.o.dispatcher,
        timeoutMs,
        signal: signal ?? undefined,
        now: this.now,
      });
    } catch (err) {
      // Cut short by close(): close() looks once more itself.
      if (signal?.aborted) this.sentSinceObserve += sent;
      throw err;
    }
  }

  private async observe(): Promise<void> {
    if (!this.o.state || this.sentSinceObserve === 0) return;
    try {
      await this.observeNow();
    } catch (err) {
      if (this.halt.signal.aborted) return;
      if (err instanceof WitnessKeyChangedError) this.keyChecked = false;
      this.o.onError?.(err as Error);
    }
  }
}

type IdleReason = 'empty' | 'linger' | 'backoff';
