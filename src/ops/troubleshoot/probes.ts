// Real reachability probes for the decision trees: a STUN Binding request (the agent's own probe) and
// a TURN Allocate with long-term credentials (RFC 5766 / RFC 5389 §10.2), released again at once.
// Written here because no shared TURN client exists yet (src/clients/stun.ts is planned on another
// branch); when it lands, these should move onto it.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { stunProbe } from '../../agent/turn-pool.js';
import { parseIceUrl } from '../../config/ice-url.js';

export interface ProbeResult {
  url: string;
  ok: boolean;
  rtt_ms: number | null;
  /** TURN: the relayed address coturn allocated. */
  relayed?: string;
  error?: string;
}

const COOKIE = 0x2112a442;

function target(url: string): { host: string; port: number } | string {
  const u = parseIceUrl(url, ['stun', 'turn', 'turns']);
  if (typeof u === 'string') return u;
  return { host: u.host, port: u.port };
}

export async function probeStun(url: string, timeoutMs = 1_000): Promise<ProbeResult> {
  const t = target(url);
  if (typeof t === 'string') return { url, ok: false, rtt_ms: null, error: t };
  try {
    const rtt = await stunProbe(t.host, t.port, timeoutMs);
    return { url, ok: true, rtt_ms: Math.round(rtt * 10) / 10 };
  } catch (err) {
    return { url, ok: false, rtt_ms: null, error: (err as Error).message };
  }
}

function attr(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

function message(type: number, attrs: Buffer[], key?: Buffer): { tx: Buffer; bytes: Buffer } {
  const tx = randomBytes(12);
  let body = Buffer.concat(attrs);
  const header = (len: number) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(type, 0);
    h.writeUInt16BE(len, 2);
    h.writeUInt32BE(COOKIE, 4);
    tx.copy(h, 8);
    return h;
  };
  if (key) {
    // MESSAGE-INTEGRITY covers the message with its length already counting the 24-byte attribute.
    const mac = createHmac('sha1', key)
      .update(Buffer.concat([header(body.length + 24), body]))
      .digest();
    body = Buffer.concat([body, attr(0x0008, mac)]);
  }
  return { tx, bytes: Buffer.concat([header(body.length), body]) };
}

interface Answer {
  type: number;
  attrs: Map<number, Buffer>;
}

function parse(msg: Buffer): Answer & { tx: Buffer } {
  const attrs = new Map<number, Buffer>();
  let i = 20;
  const end = Math.min(msg.length, 20 + msg.readUInt16BE(2));
  while (i + 4 <= end) {
    const t = msg.readUInt16BE(i);
    const len = msg.readUInt16BE(i + 2);
    attrs.set(t, msg.subarray(i + 4, i + 4 + len));
    i += 4 + len + ((4 - (len % 4)) % 4);
  }
  return { type: msg.readUInt16BE(0), attrs, tx: msg.subarray(8, 20) };
}

function errorCode(a: Answer): number | null {
  const v = a.attrs.get(0x0009);
  return v && v.length >= 4 ? (v[2]! & 0x7) * 100 + v[3]! : null;
}

/** A TURN Allocate over UDP with USERNAME/REALM/NONCE/MESSAGE-INTEGRITY, then a Refresh of lifetime 0. */
export async function probeTurnAllocate(
  url: string,
  cred: { username: string; password: string },
  timeoutMs = 2_000,
): Promise<ProbeResult> {
  const t = target(url);
  if (typeof t === 'string') return { url, ok: false, rtt_ms: null, error: t };
  const socket = createSocket(t.host.includes(':') ? 'udp6' : 'udp4');
  socket.on('error', () => {});
  const exchange = (bytes: Buffer, tx: Buffer) =>
    new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.off('message', on);
        reject(new Error(`no TURN answer from ${t.host}:${t.port} in ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (msg: Buffer) => {
        if (msg.length < 20) return;
        const a = parse(msg);
        if (!a.tx.equals(tx)) return;
        clearTimeout(timer);
        socket.off('message', on);
        resolve(a);
      };
      socket.on('message', on);
      socket.send(bytes, t.port, t.host);
    });
  const transport = attr(0x0019, Buffer.from([17, 0, 0, 0]));
  const t0 = performance.now();
  try {
    const first = message(0x0003, [transport]);
    const challenge = await exchange(first.bytes, first.tx);
    const realm = challenge.attrs.get(0x0014);
    const nonce = challenge.attrs.get(0x0015);
    if (challenge.type !== 0x0113 || errorCode(challenge) !== 401 || !realm || !nonce)
      return {
        url,
        ok: false,
        rtt_ms: null,
        error: `unexpected answer to Allocate (type 0x${challenge.type.toString(16)})`,
      };
    const key = createHash('md5').update(`${cred.username}:${realm.toString()}:${cred.password}`).digest();
    const auth = [attr(0x0006, Buffer.from(cred.username)), attr(0x0014, realm), attr(0x0015, nonce)];
    const alloc = message(0x0003, [transport, ...auth], key);
    const answer = await exchange(alloc.bytes, alloc.tx);
    const rtt = Math.round((performance.now() - t0) * 10) / 10;
    if (answer.type !== 0x0103)
      return {
        url,
        ok: false,
        rtt_ms: rtt,
        error: `Allocate refused with error ${errorCode(answer) ?? '?'}`,
      };
    const x = answer.attrs.get(0x0016);
    const relayed = x
      ? `${[0, 1, 2, 3].map((i) => x[4 + i]! ^ ((COOKIE >>> (24 - 8 * i)) & 0xff)).join('.')}:${x.readUInt16BE(2) ^ (COOKIE >>> 16)}`
      : undefined;
    const free = message(0x0004, [attr(0x000d, Buffer.alloc(4)), ...auth], key);
    await exchange(free.bytes, free.tx).catch(() => undefined);
    return { url, ok: true, rtt_ms: rtt, ...(relayed ? { relayed } : {}) };
  } catch (err) {
    return { url, ok: false, rtt_ms: null, error: (err as Error).message };
  } finally {
    socket.close();
  }
}
