// The agent's link to signaling: the first reachable URL of its list, the next one within the
// failover timeout when it is not, exponential backoff when none is, and re-registration with
// proof of key after every reconnect. DataChannels do not depend on it: losing signaling only
// stops new negotiations until it is back.
import WebSocket from 'ws';
import { createSigner, toBase64url } from '../crypto/ed25519.js';
import { type RotationProof, registerChallenge } from '../protocol/signaling.js';
import { formatDuration } from '../ui/units.js';
import { type Clock, systemClock } from '../util/clock.js';

export interface SignalingIdentity {
  seed: Uint8Array;
  publicKey: Uint8Array;
  /**
   * The rotation that made this key, signed by the previous one: presented at every registration,
   * so a server that still binds the id to the previous key (the agent restarted before the
   * re-registration reached it) moves the binding. Ignored once the binding is this key.
   */
  rotation?: RotationProof | undefined;
}

export interface SignalingClientOptions {
  urls: string[];
  agentId: string;
  identity: () => SignalingIdentity;
  metadata: Record<string, unknown>;
  failoverTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  rejectUnauthorized: boolean;
  /** CAs a wss:// server's certificate may chain to (the system's and the operator's); default: the system's. */
  ca?: string[] | undefined;
  /** The reconnection backoff runs on it. */
  clock?: Clock;
  onFrame: (frame: Record<string, any>) => void;
  onEvent: (
    event: 'signaling_connected' | 'signaling_connection_failed' | 'signaling_connection_lost',
    metadata: Record<string, unknown>,
  ) => void;
  /** Every URL failed: the next round starts in `delayMs` (the agent's log says so). */
  onRetry?: (delayMs: number) => void;
}

/** http(s):// and ws(s):// name the same server. */
export function toWebSocketUrl(url: string): string {
  return url.replace(/^http(s?):\/\//i, 'ws$1://');
}

export class SignalingClient {
  private ws: WebSocket | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  url: string | undefined;
  registered = false;
  /** How many `registered` answers this client has had: a re-registration is done when it grows. */
  registrations = 0;

  constructor(private readonly o: SignalingClientOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  send(frame: Record<string, unknown>): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.registered) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Re-registers on the open socket under the current identity (after a key rotation). */
  reregister(): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'challenge' }));
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.ws?.close(1000, 'agent stopping');
    this.ws?.terminate();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let lost: Promise<{ code: number; reason: string }> | undefined;
      for (const raw of this.o.urls) {
        if (this.stopped) return;
        const url = toWebSocketUrl(raw);
        try {
          lost = (await this.connect(url)).closed;
          this.url = url;
          failures = 0;
          this.o.onEvent('signaling_connected', { url });
          break;
        } catch (err) {
          // `localhost` tried on ::1 and 127.0.0.1 fails with an AggregateError whose message is empty
          const e = err as NodeJS.ErrnoException;
          this.o.onEvent('signaling_connection_failed', { url, error: e.message || String(e.code ?? e) });
        }
      }
      if (this.stopped) return;
      if (!lost) {
        const delay = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** failures);
        failures += 1;
        this.o.onRetry?.(delay);
        await this.sleep(delay);
        continue;
      }
      const { code, reason } = await lost;
      this.registered = false;
      if (this.stopped) return;
      this.o.onEvent('signaling_connection_lost', { url: this.url, code, ...(reason ? { reason } : {}) });
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const clock = this.o.clock ?? systemClock;
      const t = clock.setTimeout(resolve, ms);
      this.wake = () => {
        clock.clearTimeout(t);
        resolve();
      };
    });
  }

  /**
   * Opens and registers; resolves with a promise of the socket's close (wrapped: a promise resolved
   * with a promise would wait for it). Rejects within the failover timeout.
   */
  private connect(url: string): Promise<{ closed: Promise<{ code: number; reason: string }> }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        rejectUnauthorized: this.o.rejectUnauthorized,
        ...(this.o.ca ? { ca: this.o.ca } : {}),
        handshakeTimeout: this.o.failoverTimeoutMs,
      });
      let settled = false;
      const timer = setTimeout(
        () => fail(new Error(`no registration within ${formatDuration(this.o.failoverTimeoutMs)}`)),
        this.o.failoverTimeoutMs,
      );
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(err);
      };
      const closed = new Promise<{ code: number; reason: string }>((r) =>
        ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
      );
      ws.on('error', (err) => fail(err));
      ws.on('close', (code, reason) => fail(new Error(`closed ${code} ${reason.toString()}`)));
      ws.on('message', (data) => {
        let frame: Record<string, any>;
        try {
          frame = JSON.parse(data.toString());
        } catch {
          return;
        }
        if (frame.type === 'hello') {
          const id = this.o.identity();
          const publicKey = toBase64url(id.publicKey);
          ws.send(
            JSON.stringify({
              type: 'register',
              agent_id: this.o.agentId,
              public_key: publicKey,
              signature: toBase64url(
                createSigner(id.seed).sign(registerChallenge(frame.nonce, this.o.agentId)),
              ),
              metadata: this.o.metadata,
              ...(id.rotation?.public_key === publicKey ? { rotation: id.rotation } : {}),
            }),
          );
          return;
        }
        if (frame.type === 'registered') {
          this.registered = true;
          this.registrations++;
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            this.ws = ws;
            resolve({ closed });
          }
        } else if (frame.type === 'error' && !settled) {
          return fail(new Error(`${frame.code}: ${frame.message}`));
        }
        this.o.onFrame(frame);
      });
    });
  }
}
