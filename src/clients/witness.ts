import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import type { IfmeshError } from '../errors.js';
import { MAX_BATCH, type WitnessEvent } from '../protocol/witness.js';
import { httpRequest } from './http.js';
import { Spool } from './spool.js';
import { observeCheckpoint } from './witness-checkpoint.js';

export interface WitnessClientOptions {
  /** Base URL of IF.witness. */
  url: string;
  apiKey: string;
  /** Names this producer; its events keep their order and its spool file is its own. */
  producer: string;
  /** Where events wait while the witness is unreachable. */
  spoolDir: string;
  /** When set, the newest checkpoint seen is kept here and every new one is proven consistent with it. */
  stateDir?: string | undefined;
  dispatcher?: Dispatcher | undefined;
  timeoutMs?: number;
  batchSize?: number;
  /** How long events may wait in memory before a send. */
  lingerMs?: number;
  /** Events held in memory before they are written to the spool. */
  maxQueue?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  now?: () => number;
  onError?: (err: Error) => void;
}

type SendOutcome = 'ok' | 'retry' | 'too_large' | 'rejected';

/**
 * The witness client every part of ifmesh uses. `log()` never blocks and never throws: events are
 * batched and sent in order; when the witness is unreachable or answers 5xx they are written to a
 * durable spool and replayed, in order and before anything newer, once it answers again. Each event
 * carries an idempotency key, so a batch resent after an unacknowledged commit is stored once.
 */
export class WitnessClient {
  private queue: Record<string, unknown>[] = [];
  private readonly spool: Spool;
  private opened: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private closing = false;
  private stopped = false;
  private retryMs = 0;
  private batchSize: number;
  private sentSinceObserve = 0;
  readonly stats = { sent: 0, spooled: 0, rejected: 0 };
  private readonly o: Required<Omit<WitnessClientOptions, 'stateDir' | 'dispatcher' | 'onError'>> &
    Pick<WitnessClientOptions, 'stateDir' | 'dispatcher' | 'onError'>;

  constructor(opts: WitnessClientOptions) {
    this.o = {
      timeoutMs: 5_000,
      batchSize: 500,
      lingerMs: 50,
      maxQueue: 10_000,
      retryMinMs: 100,
      retryMaxMs: 5_000,
      now: Date.now,
      ...opts,
      url: opts.url.replace(/\/+$/, '').replace(/\/api\/(log|events)$/, ''),
    };
    this.batchSize = Math.min(this.o.batchSize, MAX_BATCH);
    this.spool = new Spool(this.o.spoolDir, this.o.producer);
  }

  /** Queues one event; fills in `timestamp` and an `idempotency_key` if absent. */
  log(event: WitnessEvent): void {
    if (this.stopped) {
      this.o.onError?.(
        new Error(`witness client for ${this.o.producer} is closed; event ${event.event} dropped`),
      );
      return;
    }
    this.queue.push({
      ...event,
      timestamp: event.timestamp ?? new Date(this.o.now()).toISOString(),
      idempotency_key: event.idempotency_key ?? `${this.o.producer}:${randomUUID()}`,
    });
    this.start();
    if (this.idleReason === 'empty' || (this.idleReason === 'linger' && this.queue.length >= this.batchSize))
      this.wake?.();
  }

  private start(): void {
    this.opened ??= this.spool.open();
    this.loop ??= this.run().catch((err) => {
      this.o.onError?.(err as Error);
    });
  }

  /** Waits until everything logged so far is stored or spooled; true if it reached the witness. */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    this.start();
    const deadline = this.o.now() + timeoutMs;
    while (this.o.now() < deadline) {
      await this.opened;
      if (this.queue.length === 0 && !this.spool.pending && !this.inFlight) return true;
      if (this.idleReason !== 'backoff') this.wake?.();
      await sleep(10);
    }
    await this.spillQueue();
    return false;
  }

  /** Stops the sender; whatever is not acknowledged by `timeoutMs` stays in the spool. */
  async close(timeoutMs = 3_000): Promise<void> {
    if (this.stopped) return;
    if (this.loop) await this.flush(timeoutMs);
    this.closing = true;
    this.wake?.();
    this.wake = undefined;
    await this.loop;
    await this.spillQueue();
    this.stopped = true;
    if (this.opened) {
      await this.opened.catch(() => {});
      await this.spool.close();
    }
  }

  private inFlight = false;

  private async spillQueue(): Promise<void> {
    if (this.queue.length === 0 || !this.opened) return;
    await this.opened;
    const events = this.queue;
    this.queue = [];
    await this.spool.append(events);
    this.stats.spooled += events.length;
  }

  private async run(): Promise<void> {
    await this.opened;
    while (!this.closing) {
      if (this.retryMs > 0) {
        await this.idle(this.retryMs, 'backoff');
        if (this.closing) break;
      }
      if (this.spool.pending) {
        this.inFlight = true;
        const { events, end } = await this.spool.peek(this.batchSize);
        const outcome = events.length ? await this.send(events) : 'ok';
        this.inFlight = false;
        if (outcome === 'ok' || outcome === 'rejected') {
          if (outcome === 'rejected') await this.deadLetter(events);
          await this.spool.advance(end);
        }
        if (this.queue.length > this.o.maxQueue) await this.spillQueue();
        continue;
      }
      if (this.queue.length === 0) {
        await this.observe();
        await this.idle(60_000, 'empty');
        continue;
      }
      if (this.queue.length < this.batchSize) await this.idle(this.o.lingerMs, 'linger');
      const batch = this.queue.splice(0, this.batchSize);
      this.inFlight = true;
      const outcome = await this.send(batch);
      this.inFlight = false;
      if (outcome === 'retry') {
        // Everything not acknowledged moves to the spool, in order, before anything newer.
        const rest = this.queue;
        this.queue = [];
        await this.spool.append([...batch, ...rest]);
        this.stats.spooled += batch.length + rest.length;
      } else if (outcome === 'too_large') {
        this.queue.unshift(...batch);
      } else if (outcome === 'rejected') {
        await this.deadLetter(batch);
      }
    }
  }

  private idleReason: 'empty' | 'linger' | 'backoff' | undefined;

  private idle(ms: number, reason: 'empty' | 'linger' | 'backoff'): Promise<void> {
    // close() may have called wake() while the loop was busy (observing a checkpoint): nothing was
    // idle then, so an idle begun after it would hold close() for its whole length.
    if (this.closing) return Promise.resolve();
    this.idleReason = reason;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wake = undefined;
        this.idleReason = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake = done;
    });
  }

  private async send(events: Record<string, unknown>[]): Promise<SendOutcome> {
    let status: number;
    let message = '';
    try {
      const res = await httpRequest(`${this.o.url}/api/log`, {
        method: 'POST',
        body: JSON.stringify(events),
        headers: { authorization: `Bearer ${this.o.apiKey}` },
        timeoutMs: this.o.timeoutMs,
        dispatcher: this.o.dispatcher,
      });
      status = res.status;
      message = (res.json as { error?: { message?: string } })?.error?.message ?? '';
    } catch (err) {
      return this.backoff(err as IfmeshError);
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
    this.o.onError?.(err);
    return 'retry';
  }

  private async deadLetter(events: Record<string, unknown>[]): Promise<void> {
    this.stats.rejected += events.length;
    const file = path.join(
      this.o.spoolDir,
      `${this.spool.producer.replace(/[^A-Za-z0-9._-]/g, '_')}.rejected.ndjson`,
    );
    await fs.appendFile(file, events.map((e) => `${JSON.stringify(e)}\n`).join(''), { mode: 0o600 });
  }

  private async observe(): Promise<void> {
    if (!this.o.stateDir || this.sentSinceObserve === 0) return;
    this.sentSinceObserve = 0;
    try {
      await observeCheckpoint({
        url: this.o.url,
        stateDir: this.o.stateDir,
        dispatcher: this.o.dispatcher,
        timeoutMs: this.o.timeoutMs,
      });
    } catch (err) {
      this.o.onError?.(err as Error);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
