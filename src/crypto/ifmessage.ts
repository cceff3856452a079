import { randomFillSync, randomUUID } from 'node:crypto';
import {
  checkShape,
  type IFMessage,
  MESSAGE_MAX_BYTES,
  SIGNATURE_DOMAIN,
  type UnsignedIFMessage,
} from '../protocol/ifmessage.js';
import { fromBase64url, type Signer, toBase64url, verifySignature } from './ed25519.js';
import { canonicalize } from './jcs.js';
import { ReplayWindow } from './replay.js';

const encoder = new TextEncoder();

/** The exact bytes a signature covers: the domain prefix, a newline, and the JCS of the message without `sig`. */
export function signingBytes(message: UnsignedIFMessage | IFMessage): Uint8Array {
  const { sig: _sig, ...rest } = message as IFMessage;
  return encoder.encode(`${SIGNATURE_DOMAIN}\n${canonicalize(rest)}`);
}

export interface NewMessage {
  from: string;
  to: string;
  type: string;
  payload?: Record<string, unknown>;
}

// Every message a link sends is built here, and on a streaming link (issue 24, `node --cpu-prof` on
// the agent bench) its two calls into the system for fresh bytes and a fresh date string cost about
// a sixth of what signing does, on the thread that also runs werift. Nonces come from a pool of
// random bytes refilled 256 at a time (as node:crypto's randomUUID caches its own), and the
// timestamp string is reused within its millisecond: the same bytes, from the same CSPRNG, each
// nonce used once.
const NONCE_BYTES = 16;
const noncePool = Buffer.alloc(NONCE_BYTES * 256);
let nonceAt = noncePool.length;

function freshNonce(): string {
  if (nonceAt === noncePool.length) {
    randomFillSync(noncePool);
    nonceAt = 0;
  }
  const nonce = noncePool.toString('base64url', nonceAt, nonceAt + NONCE_BYTES);
  nonceAt += NONCE_BYTES;
  return nonce;
}

let tsFor = { ms: Number.NaN, text: '' };

function isoTimestamp(ms: number): string {
  if (ms !== tsFor.ms) tsFor = { ms, text: new Date(ms).toISOString() };
  return tsFor.text;
}

export function buildMessage(m: NewMessage, nowMs: number): UnsignedIFMessage {
  return {
    v: 1,
    id: randomUUID(),
    from: m.from,
    to: m.to,
    type: m.type,
    ts: isoTimestamp(nowMs),
    nonce: freshNonce(),
    payload: m.payload ?? {},
  };
}

export function signMessage(message: UnsignedIFMessage, signer: Signer): IFMessage {
  return { ...message, sig: toBase64url(signer.sign(signingBytes(message))) };
}

/**
 * Signs and serialises in one pass: the canonical form the signature needs is also the wire text,
 * with `sig` appended as the last member (key order on the wire is free; receivers parse it). Saves
 * the second serialisation of every message a link sends.
 */
export function signToText(message: UnsignedIFMessage, signer: Signer): { message: IFMessage; text: string } {
  const { sig: _sig, ...rest } = message as IFMessage;
  const canonical = canonicalize(rest);
  const sig = toBase64url(signer.sign(encoder.encode(`${SIGNATURE_DOMAIN}\n${canonical}`)));
  // The canonical form of an object is `{…}`, `{}` at the least: sig goes in before the brace.
  const text = `${canonical.slice(0, -1)}${canonical.length > 2 ? ',' : ''}"sig":"${sig}"}`;
  return { message: { ...message, sig }, text };
}

/** Why a message was dropped. Each is reported as `signature_verification_failed` with this reason. */
export type RejectReason =
  | 'malformed'
  | 'wrong_sender'
  | 'wrong_recipient'
  | 'stale_timestamp'
  | 'bad_signature'
  | 'replayed_nonce';

export type VerifyFailure = { ok: false; reason: RejectReason; detail: string; message?: IFMessage };
export type VerifyResult = { ok: true; message: IFMessage } | VerifyFailure;

/** A message that passed every check before the signature: what the signature covers, and the clock read. */
export interface Precheck {
  ok: true;
  message: IFMessage;
  tsMs: number;
  nowMs: number;
  signed: Uint8Array;
  signature: Uint8Array;
}

export interface VerifierOptions {
  /** Accepted clock skew either way, default 30 s. */
  skewMs?: number;
  /** How many nonces to remember, default 100,000. */
  nonceCapacity?: number;
  now: () => number;
}

export interface Expectation {
  /** The public key registered for the channel's peer. */
  publicKey: Uint8Array;
  /** The channel's peer id: `from` must equal it. */
  from?: string;
  /** This agent's id: `to` must equal it. */
  to?: string;
}

/**
 * Verifies IFMessages for one receiver. Cheap checks come first so that junk costs no signature
 * verification, and a nonce is remembered only once its signature holds, so that forged messages
 * cannot fill the replay cache.
 */
export class MessageVerifier {
  private readonly replay: ReplayWindow;
  private readonly now: () => number;

  constructor(opts: VerifierOptions) {
    this.replay = new ReplayWindow(opts.skewMs ?? 30_000, opts.nonceCapacity ?? 100_000);
    this.now = opts.now;
  }

  get skewMs(): number {
    return this.replay.skewMs;
  }

  verifyText(text: string, expect: Expectation): VerifyResult {
    const pre = this.precheckText(text, expect);
    if (!pre.ok) return pre;
    return this.finish(pre, verifySignature(expect.publicKey, pre.signed, pre.signature));
  }

  verify(value: unknown, expect: Expectation): VerifyResult {
    const pre = this.precheck(value, expect);
    if (!pre.ok) return pre;
    return this.finish(pre, verifySignature(expect.publicKey, pre.signed, pre.signature));
  }

  /**
   * Every check but the signature and the replay cache, in the order verify() runs them: what a
   * receiver can do cheaply before handing the signature to another thread (VerifyPool). The
   * signature result then goes to finish(), in arrival order, with the same clock reading.
   */
  precheckText(text: string, expect: Expectation): Precheck | VerifyFailure {
    if (text.length > MESSAGE_MAX_BYTES)
      return { ok: false, reason: 'malformed', detail: `larger than ${MESSAGE_MAX_BYTES} bytes` };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { ok: false, reason: 'malformed', detail: 'not valid JSON' };
    }
    return this.precheck(value, expect);
  }

  precheck(value: unknown, expect: Expectation): Precheck | VerifyFailure {
    const shape = checkShape(value);
    if (!shape.ok) return { ok: false, reason: 'malformed', detail: shape.detail };
    const { message, tsMs } = shape;
    if (expect.from !== undefined && message.from !== expect.from) {
      return {
        ok: false,
        reason: 'wrong_sender',
        detail: `from is ${message.from}, the channel's peer is ${expect.from}`,
        message,
      };
    }
    if (expect.to !== undefined && message.to !== expect.to) {
      return {
        ok: false,
        reason: 'wrong_recipient',
        detail: `to is ${message.to}, this agent is ${expect.to}`,
        message,
      };
    }
    const nowMs = this.now();
    if (Math.abs(nowMs - tsMs) > this.replay.skewMs) {
      const off = Math.round((tsMs - nowMs) / 1000);
      return {
        ok: false,
        reason: 'stale_timestamp',
        detail: `ts is ${off} s from now; the window is ±${this.replay.skewMs / 1000} s`,
        message,
      };
    }
    const signature = fromBase64url(message.sig, 64, 'sig');
    return { ok: true, message, tsMs, nowMs, signed: signingBytes(message), signature };
  }

  /** The signature's verdict, then the replay cache (which remembers only verified nonces). */
  finish(pre: Precheck, signatureHolds: boolean): VerifyResult {
    const { message, tsMs, nowMs } = pre;
    if (!signatureHolds) {
      return {
        ok: false,
        reason: 'bad_signature',
        detail: 'signature does not verify under the sender key',
        message,
      };
    }
    const seen = this.replay.check(message.from, message.nonce, tsMs, nowMs);
    if (seen === 'replayed')
      return {
        ok: false,
        reason: 'replayed_nonce',
        detail: `nonce ${message.nonce} was already used`,
        message,
      };
    if (seen === 'outside_window') {
      return {
        ok: false,
        reason: 'stale_timestamp',
        detail: 'ts is older than the replay window still remembers',
        message,
      };
    }
    return { ok: true, message };
  }
}

export function decodeSignature(sig: string): Uint8Array {
  return fromBase64url(sig, 64, 'sig');
}
