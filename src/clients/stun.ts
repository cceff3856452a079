// A minimal STUN/TURN client for health checks: a Binding request (RFC 5389) and a TURN Allocate
// with long-term credentials (RFC 5766 §6, RFC 5389 §10.2), released at once with Refresh lifetime 0.
// Message encoding and parsing are werift's (the same code the agents' ICE runs on); only the
// transaction (send, retransmit, match the reply, time out) is ours, so it runs on the injected clock.
import { createSocket, type Socket, type SocketOptions } from 'node:dgram';
import { classes, Message, makeIntegrityKey, methods, parseMessage } from 'werift';
import { formatDuration } from '../ui/units.js';
import type { Clock } from '../util/clock.js';

export interface StunTarget {
  host: string;
  port: number;
}

export interface StunOptions {
  timeoutMs: number;
  clock: Clock;
  /** Name resolution (node:dgram's `lookup`): the system resolver unless given. */
  lookup?: SocketOptions['lookup'];
}

/** A STUN error answer (ERROR-CODE), or no answer at all (`code` undefined). */
export class StunError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
    this.name = 'StunError';
  }
}

// RFC 5766 §14.7: REQUESTED-TRANSPORT carries the protocol number (17, UDP) in its first byte.
const REQUESTED_TRANSPORT_UDP = 17 << 24;
// RFC 5389 §7.2.1 starts at 500 ms and doubles; on loopback a shorter first retransmit is harmless.
const FIRST_RTO_MS = 250;

interface Waiting {
  answer(data: Buffer): void;
  fail(err: Error): void;
}

class Transactions {
  private readonly socket: Socket;
  private readonly waiting = new Map<string, Waiting>();
  private readonly connected: Promise<void>;
  private error: Error | undefined;

  constructor(
    private readonly target: StunTarget,
    private readonly o: StunOptions,
  ) {
    this.socket = createSocket({
      type: target.host.includes(':') ? 'udp6' : 'udp4',
      ...(o.lookup ? { lookup: o.lookup } : {}),
    });
    this.socket.on('message', (data) => {
      if (data.length < 20) return;
      this.waiting.get(data.subarray(8, 20).toString('hex'))?.answer(data);
    });
    // A connected UDP socket hears ICMP port-unreachable (ECONNREFUSED): a dead port fails at once
    // instead of at the timeout.
    this.socket.on('error', (err) => this.fail(err));
    // A failed connect (the name does not resolve) calls back with the error instead of emitting it.
    this.connected = new Promise((resolve) =>
      this.socket.connect(target.port, target.host, (err?: Error) => {
        if (err) this.fail(err as NodeJS.ErrnoException);
        resolve();
      }),
    );
  }

  private fail(err: NodeJS.ErrnoException): void {
    this.error = new StunError(`${this.target.host}:${this.target.port}: ${err.code ?? err.message}`);
    for (const w of [...this.waiting.values()]) w.fail(this.error);
  }

  /** Sends `req` (retransmitting) until an answer with its transaction id arrives or time runs out. */
  request(req: Message, deadline: number): Promise<Buffer> {
    const id = req.transactionId.toString('hex');
    const bytes = req.bytes;
    const { clock } = this.o;
    return new Promise((resolve, reject) => {
      let rto = FIRST_RTO_MS;
      let retransmit: object | undefined;
      const finish = (err: Error | undefined, data?: Buffer) => {
        clock.clearTimeout(timeout);
        clock.clearTimeout(retransmit);
        this.waiting.delete(id);
        if (err) reject(err);
        else resolve(data!);
      };
      const timeout = clock.setTimeout(
        () =>
          finish(
            new StunError(
              `no STUN answer from ${this.target.host}:${this.target.port} in ${formatDuration(this.o.timeoutMs)}`,
            ),
          ),
        Math.max(0, deadline - clock.now()),
      );
      const send = () => {
        try {
          this.socket.send(bytes, (err) => {
            if (err) this.fail(err);
          });
        } catch (err) {
          // the socket was closed or never connected: fail this probe, never the process
          this.fail(err as NodeJS.ErrnoException);
          return;
        }
        retransmit = clock.setTimeout(send, rto);
        rto *= 2;
      };
      if (this.error) return finish(this.error);
      this.waiting.set(id, { answer: (data) => finish(undefined, data), fail: (err) => finish(err) });
      void this.connected.then(() => {
        if (this.error) return finish(this.error);
        if (this.waiting.has(id)) send();
      });
    });
  }

  close(): void {
    this.socket.close();
  }
}

function errorOf(m: Message): { code: number; reason: string } | undefined {
  if (m.messageClass !== classes.ERROR) return undefined;
  const [code, reason] = (m.getAttributeValue('ERROR-CODE') as [number, string] | undefined) ?? [0, ''];
  return { code, reason };
}

function parse(data: Buffer, what: string, key?: Buffer): Message {
  const m = parseMessage(data, key);
  if (!m)
    throw new StunError(
      `${what}: the answer is not a valid STUN message${key ? ' (or its integrity check failed)' : ''}`,
    );
  return m;
}

/** One Binding request; the round-trip time and the address the server saw us from. */
export async function stunBinding(
  target: StunTarget,
  o: StunOptions,
): Promise<{ rttMs: number; mapped: string | undefined }> {
  const tx = new Transactions(target, o);
  const t0 = o.clock.now();
  try {
    const answer = parse(
      await tx.request(new Message(methods.BINDING, classes.REQUEST), t0 + o.timeoutMs),
      'Binding',
    );
    const err = errorOf(answer);
    if (err) throw new StunError(`Binding refused: ${err.code} ${err.reason}`, err.code);
    const mapped = answer.getAttributeValue('XOR-MAPPED-ADDRESS') as [string, number] | undefined;
    return { rttMs: o.clock.now() - t0, mapped: mapped ? `${mapped[0]}:${mapped[1]}` : undefined };
  } finally {
    tx.close();
  }
}

export interface TurnCredentials {
  username: string;
  password: string;
}

/**
 * A real Allocate with long-term credentials: the unauthenticated request draws 401 with REALM and
 * NONCE, the second carries USERNAME/REALM/NONCE and MESSAGE-INTEGRITY (438 stale nonce is retried
 * once). On success the allocation is released at once (Refresh, LIFETIME 0) so a health check
 * holds no relay port. Throws StunError with the server's code (401: credentials refused).
 */
export async function turnAllocate(
  target: StunTarget,
  cred: TurnCredentials,
  o: StunOptions,
): Promise<{ relayed: string; realm: string; rttMs: number }> {
  const tx = new Transactions(target, o);
  const t0 = o.clock.now();
  const deadline = t0 + o.timeoutMs;
  const allocate = () =>
    new Message(methods.ALLOCATE, classes.REQUEST).setAttribute(
      'REQUESTED-TRANSPORT',
      REQUESTED_TRANSPORT_UDP,
    );
  try {
    const first = parse(await tx.request(allocate(), deadline), 'Allocate');
    let err = errorOf(first);
    if (!err) throw new StunError('Allocate succeeded without credentials: the server does not authenticate');
    let realm = first.getAttributeValue('REALM') as string | undefined;
    let nonce = first.getAttributeValue('NONCE') as Buffer | undefined;
    if (err.code !== 401 || !realm || !nonce)
      throw new StunError(`Allocate refused: ${err.code} ${err.reason}`, err.code);
    for (let attempt = 0; ; attempt++) {
      const key = makeIntegrityKey(cred.username, realm, cred.password);
      const signed = (m: Message) =>
        m
          .setAttribute('USERNAME', cred.username)
          .setAttribute('REALM', realm!)
          .setAttribute('NONCE', nonce!)
          .addMessageIntegrity(key)
          .addFingerprint();
      const raw = await tx.request(signed(allocate()), deadline);
      // An error answer to bad credentials cannot carry integrity made with them: parse it unchecked.
      const answer = parse(raw, 'Allocate');
      err = errorOf(answer);
      if (err?.code === 438 && attempt === 0) {
        nonce = (answer.getAttributeValue('NONCE') as Buffer | undefined) ?? nonce;
        realm = (answer.getAttributeValue('REALM') as string | undefined) ?? realm;
        continue;
      }
      if (err) throw new StunError(`Allocate refused: ${err.code} ${err.reason}`, err.code);
      parse(raw, 'Allocate', key);
      const relayed = answer.getAttributeValue('XOR-RELAYED-ADDRESS') as [string, number] | undefined;
      if (!relayed) throw new StunError('Allocate answered without XOR-RELAYED-ADDRESS');
      const rttMs = o.clock.now() - t0;
      const release = signed(new Message(methods.REFRESH, classes.REQUEST).setAttribute('LIFETIME', 0));
      const refreshed = parse(await tx.request(release, deadline), 'Refresh');
      const rerr = errorOf(refreshed);
      if (rerr) throw new StunError(`Refresh (release) refused: ${rerr.code} ${rerr.reason}`, rerr.code);
      return { relayed: `${relayed[0]}:${relayed[1]}`, realm, rttMs };
    }
  } finally {
    tx.close();
  }
}
