// What signaling instances say to each other over Redis pub/sub, sealed so that only a holder of
// the cluster secret can speak. A message on the wire is `<mac>.<body>`: body is JSON
// {"s":sender,"n":seq,"ts":ms,"m":payload} and mac the base64url HMAC-SHA256, under a key derived
// from the secret, of "ifmesh-cluster/v1\n<channel>\n<body>". Binding the channel name means a
// message cannot be moved to another instance's relay channel, another mesh or the admin channel.
// The sender (instance id plus a per-boot nonce) numbers its messages; a receiver keeps the highest
// number seen per sender and a clock window, so a captured message cannot be published again.
// Everything is then schema-checked: a receiver acts only on the fields it expects, with bounded
// sizes, and anything else is dropped with a reason, counted and logged by the caller.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { adminPushSchema } from './push.js';
import type { AdminPush } from './types.js';

export type ClusterChannel = 'relay' | 'admin' | 'ann';
export type DropReason = 'unsigned' | 'bad_signature' | 'malformed' | 'stale' | 'replayed' | 'failed';

/** Larger than any frame a socket may send (1 MiB) plus the envelope. */
export const MAX_MESSAGE_BYTES = 1_200_000;
const MAC_CHARS = 43;
const DOMAIN = 'ifmesh-cluster/v1';

const id = z.string().min(1).max(256);
const frameText = z.string().min(1).max(1_100_000);

export const relaySchema = z.union([
  /** A frame for one of this instance's agents; `c` when sent on a cached location. */
  z.strictObject({ to: id, mesh: z.string().max(64), t: frameText, c: z.literal(1).optional() }),
  /** Close the socket `session` of agent `kick`: it registered on another instance. */
  z.strictObject({ kick: id, session: id }),
]);

export const annSchema = z.strictObject({
  /** The instance that told its own agents already (null: nobody did). */
  o: id.nullable(),
  /** The frame for the mesh's agents, a JSON object with a string `type`. */
  f: frameText.refine((f) => {
    try {
      const v = JSON.parse(f) as unknown;
      return (
        !!v &&
        typeof v === 'object' &&
        !Array.isArray(v) &&
        typeof (v as { type?: unknown }).type === 'string'
      );
    } catch {
      return false;
    }
  }, 'not a JSON frame with a type'),
  /** The agent not to send it to. */
  x: id.optional(),
  /** The agent it is about (its cached location is dropped). */
  a: id.optional(),
});

export const adminSchema = z.strictObject({ o: id, p: adminPushSchema });

export type RelayMessage = z.infer<typeof relaySchema>;
export type AnnMessage = z.infer<typeof annSchema>;
export interface AdminMessage {
  o: string;
  p: AdminPush;
}
interface Payloads {
  relay: RelayMessage;
  ann: AnnMessage;
  admin: AdminMessage;
}

const SCHEMAS: { [K in ClusterChannel]: z.ZodType<Payloads[K]> } = {
  relay: relaySchema,
  ann: annSchema,
  admin: adminSchema as z.ZodType<AdminMessage>,
};

const envelopeSchema = z.strictObject({
  s: id,
  n: z.number().int().positive(),
  ts: z.number().int().nonnegative(),
  m: z.unknown(),
});

export type Opened<K extends ClusterChannel> =
  | { ok: true; sender: string; m: Payloads[K] }
  | { ok: false; reason: DropReason; detail: string };

/** The HMAC key of a cluster: HKDF of the secret, bound to the key prefix the instances share. */
export function clusterKey(secret: string, prefix: string): Buffer {
  return Buffer.from(
    hkdfSync('sha256', Buffer.from(secret, 'utf8'), prefix, 'ifmesh cluster messages v1', 32),
  );
}

export interface ClusterCodecOptions {
  key: Buffer;
  /** This instance; its messages are numbered under `<instanceId>#<boot nonce>`. */
  instanceId: string;
  /** How far a message's time may be from ours (instances' clocks and Redis latency). */
  windowMs?: number;
  now?: () => number;
}

export class ClusterCodec {
  readonly sender: string;
  private seq = 0;
  private readonly windowMs: number;
  private readonly now: () => number;
  /** The highest number seen from each sender, and when: forgotten two windows after. */
  private readonly seen = new Map<string, { n: number; at: number }>();
  private lastSweep = 0;

  constructor(private readonly o: ClusterCodecOptions) {
    this.sender = `${o.instanceId}#${randomBytes(6).toString('hex')}`;
    this.windowMs = o.windowMs ?? 30_000;
    this.now = o.now ?? Date.now;
  }

  private mac(channel: string, body: string): string {
    return createHmac('sha256', this.o.key)
      .update(`${DOMAIN}\n${channel}\n`)
      .update(body)
      .digest('base64url');
  }

  /** Seals `m` for `channel` (the full Redis channel name). Numbers are taken in call order. */
  seal<K extends ClusterChannel>(channel: string, _kind: K, m: Payloads[K]): string {
    this.seq += 1;
    const body = JSON.stringify({ s: this.sender, n: this.seq, ts: this.now(), m });
    return `${this.mac(channel, body)}.${body}`;
  }

  /** Checks a message from `channel` of kind `kind`; never throws. */
  open<K extends ClusterChannel>(channel: string, kind: K, raw: string): Opened<K> {
    if (raw.length > MAX_MESSAGE_BYTES)
      return { ok: false, reason: 'malformed', detail: `${raw.length} bytes is over the limit` };
    const dot = raw.indexOf('.');
    if (dot !== MAC_CHARS || !/^[A-Za-z0-9_-]+$/.test(raw.slice(0, dot)))
      return { ok: false, reason: 'unsigned', detail: 'no HMAC in front of the message' };
    const body = raw.slice(dot + 1);
    const given = Buffer.from(raw.slice(0, dot), 'base64url');
    const want = Buffer.from(this.mac(channel, body), 'base64url');
    if (given.length !== want.length || !timingSafeEqual(given, want))
      return { ok: false, reason: 'bad_signature', detail: 'HMAC does not match the cluster secret' };
    let parsed: unknown;
    try {
      // A "__proto__" key would become an object's prototype wherever the payload is copied or
      // parsed into a fresh object (zod does): refused outright, whoever sealed it.
      parsed = JSON.parse(body, (k, v) => {
        if (k === '__proto__') throw new SyntaxError('__proto__ key');
        return v;
      });
    } catch (err) {
      return { ok: false, reason: 'malformed', detail: `body is not JSON (${(err as Error).message})` };
    }
    const env = envelopeSchema.safeParse(parsed);
    if (!env.success) return { ok: false, reason: 'malformed', detail: issue(env.error) };
    const now = this.now();
    if (Math.abs(now - env.data.ts) > this.windowMs)
      return { ok: false, reason: 'stale', detail: `sent ${now - env.data.ts} ms from now` };
    const last = this.seen.get(env.data.s);
    if (last && env.data.n <= last.n)
      return { ok: false, reason: 'replayed', detail: `number ${env.data.n} of ${env.data.s} seen before` };
    const m = SCHEMAS[kind].safeParse(env.data.m);
    if (!m.success) return { ok: false, reason: 'malformed', detail: issue(m.error) };
    // Only a message that passed every check moves the sender's number on.
    this.seen.set(env.data.s, { n: env.data.n, at: now });
    this.sweep(now);
    return { ok: true, sender: env.data.s, m: m.data };
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [s, v] of this.seen) if (now - v.at > 2 * this.windowMs) this.seen.delete(s);
  }
}

function issue(e: z.ZodError): string {
  const first = e.issues[0];
  return first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'invalid';
}
