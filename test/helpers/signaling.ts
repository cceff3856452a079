import WebSocket from 'ws';
import { createSigner, generateKeyPair, type KeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import { registerChallenge } from '../../src/protocol/signaling.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { createSignalingServer, type SignalingServer } from '../../src/services/signaling/server.js';
import type { SignalingDeps } from '../../src/services/signaling/types.js';

export const ADMIN = 'test-admin-token';

export const SETTINGS = {
  turnFallbackTimeout: 5000,
  iceTransportPolicy: 'all' as const,
  stunServers: ['stun:127.0.0.1:3478'],
  turnServers: ['turn:127.0.0.1:3478?transport=udp'],
  heartbeatTimeoutMs: 30_000,
  statsIntervalMs: 2_000,
};

export interface RunningSignaling {
  server: SignalingServer;
  url: string;
  http: string;
  events: WitnessEvent[];
  stop: () => Promise<void>;
}

export async function startSignaling(overrides: Partial<SignalingDeps> = {}): Promise<RunningSignaling> {
  const events: WitnessEvent[] = [];
  const server = createSignalingServer({
    instanceId: 'test-1',
    adminToken: ADMIN,
    settings: SETTINGS,
    drainMs: 50,
    events: { log: (e) => events.push(e) },
    ...overrides,
  });
  await server.listen(0);
  return { server, url: server.url, http: server.httpUrl, events, stop: () => server.close() };
}

type Frame = Record<string, any>;

/** A plain ws client that records frames and lets a test await the next one of a type. */
export class TestClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { type: string | undefined; resolve: (f: Frame) => void }[] = [];
  readonly ws: WebSocket;
  keys: KeyPair = generateKeyPair();

  constructor(url: string, opts: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...opts });
    this.ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as Frame;
      this.frames.push(f);
      const i = this.waiters.findIndex((w) => w.type === undefined || w.type === f.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(f);
    });
    this.ws.on('error', () => {});
    this.closed = new Promise((resolve) =>
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  /** The next frame of `type` (one already received and not yet taken counts). */
  next(type?: string, timeoutMs = 3000): Promise<Frame> {
    const i = this.frames.findIndex((f) => !f.__taken && (type === undefined || f.type === type));
    if (i >= 0) {
      this.frames[i]!.__taken = true;
      return Promise.resolve(this.frames[i]!);
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(
            new Error(
              `no ${type ?? 'frame'} within ${timeoutMs} ms; got ${JSON.stringify(this.frames.map((f) => f.type))}`,
            ),
          ),
        timeoutMs,
      );
      this.waiters.push({
        type,
        resolve: (f) => {
          clearTimeout(t);
          f.__taken = true;
          resolve(f);
        },
      });
    });
  }

  send(frame: Frame | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async open(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) return;
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  registerFrame(agentId: string, nonce: string, keys: KeyPair = this.keys): Frame {
    return {
      type: 'register',
      agent_id: agentId,
      public_key: toBase64url(keys.publicKey),
      signature: toBase64url(createSigner(keys.seed).sign(registerChallenge(nonce, agentId))),
      metadata: { role: 'test' },
    };
  }

  /** hello → register → registered. */
  async register(agentId: string, keys: KeyPair = this.keys): Promise<Frame> {
    this.keys = keys;
    const hello = await this.next('hello');
    this.send(this.registerFrame(agentId, hello.nonce, keys));
    return this.next('registered');
  }

  close(): void {
    this.ws.close();
  }
}

export async function connect(url: string, opts?: WebSocket.ClientOptions): Promise<TestClient> {
  const c = new TestClient(url, opts);
  await c.open();
  return c;
}

export async function getJson(url: string): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

export async function postJson(
  url: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}
