// A load-generating process for the signaling benchmarks: `hold` opens N sockets, then registers
// them all at once (so the registration rate is the server's, not TCP set-up's) and keeps them open
// until stdin closes; `relay` measures one-way relay latency between two agents at a fixed rate.
import { generateKeyPairSync, sign } from 'node:crypto';
import WebSocket from 'ws';
import { toBase64url } from '../../src/crypto/ed25519.js';
import { registerChallenge } from '../../src/protocol/signaling.js';

const opts = JSON.parse(process.argv[2]!) as {
  url: string;
  /** hold: socket i connects to urls[i % urls.length] (a mesh of ten then spans instances). */
  urls?: string[];
  /** relay: receivers connect here (another instance of a cluster) instead of `url`. */
  receiverUrl?: string;
  mode: 'hold' | 'relay';
  n?: number;
  concurrency?: number;
  rate?: number;
  durationMs?: number;
  tag?: string;
  pairs?: number;
  /**
   * Loopback source addresses (127.0.0.x): socket i binds localAddresses[i % len], so tens of
   * thousands of sockets to one server port do not run out of ephemeral ports on one address.
   */
  localAddresses?: string[];
  /** hold: at most this many registrations outstanding (paced); without it all are sent at once. */
  inflight?: number;
};
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

interface Pending {
  ws: WebSocket;
  /** The latest hello's nonce and when it came (undefined until the first). */
  nonce: string | undefined;
  nonceAt: number;
  /** Resolves on the next hello (the first, or the answer to a challenge). */
  hello: Promise<string>;
  registered: Promise<void>;
  frames: (f: any) => void;
}

// node:crypto generates keys and signs ~10× faster than noble; the load generator must not be the
// bottleneck (it signs one proof per socket while the sockets open).
function keys() {
  const pair = generateKeyPairSync('ed25519');
  return {
    privateKey: pair.privateKey,
    publicKey: new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)),
  };
}

function open(onFrame?: (f: any) => void, url = opts.url, localAddress?: string): Promise<Pending> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(localAddress ? { localAddress } : {}) });
    let gotHello: (n: string) => void = () => {};
    const arm = () =>
      new Promise<string>((r) => {
        gotHello = r;
      });
    let done: () => void = () => {};
    let failed: (e: Error) => void = () => {};
    const p: Pending = {
      ws,
      nonce: undefined,
      nonceAt: 0,
      hello: arm(),
      registered: new Promise((r, j) => {
        done = r;
        failed = j;
      }),
      frames: onFrame ?? (() => {}),
    };
    ws.on('error', reject);
    ws.on('open', () => resolve(p));
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (f.type === 'hello') {
        p.nonce = f.nonce;
        p.nonceAt = performance.now();
        const resolveHello = gotHello;
        p.hello = arm();
        resolveHello(f.nonce);
      } else if (f.type === 'registered') done();
      else if (f.type === 'error') failed(new Error(`${f.code} ${f.message}`));
      else p.frames(f);
    });
  });
}

/**
 * The server refuses a nonce older than 30 s, and opening tens of thousands of sockets on a loaded
 * machine takes longer: a nonce older than 10 s (the server may take seconds to reach the last
 * frame of a burst) is renewed with {"type":"challenge"} before it is signed. (The raw relay's
 * nonce, "raw", is never checked.)
 */
async function freshNonce(p: Pending): Promise<string> {
  const nonce = p.nonce ?? (await p.hello);
  if (nonce === 'raw' || performance.now() - p.nonceAt < 10_000) return nonce;
  const next = p.hello;
  p.ws.send(JSON.stringify({ type: 'challenge' }));
  return next;
}

async function frameFor(p: Pending, id: string, mesh: string, k = keys()): Promise<string> {
  const nonce = await freshNonce(p);
  const signature = toBase64url(sign(null, registerChallenge(nonce, id), k.privateKey));
  return JSON.stringify({
    type: 'register',
    agent_id: id,
    public_key: toBase64url(k.publicKey),
    signature,
    metadata: { mesh },
  });
}

if (opts.mode === 'hold') {
  const n = opts.n!;
  const tag = opts.tag ?? 'bench';
  const conc = opts.concurrency ?? 100;
  const sockets: Pending[] = [];
  const keyPairs: ReturnType<typeof keys>[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) {
        const i = next++;
        const from = opts.localAddresses?.[i % opts.localAddresses.length];
        const p = await open(undefined, opts.urls ? opts.urls[i % opts.urls.length] : opts.url, from);
        sockets[i] = p;
        keyPairs[i] = keys();
        // The hello may have come in the same read as the upgrade, before this line ran.
        if (p.nonce === undefined) await p.hello;
      }
    }),
  );
  const connectMs = performance.now() - t0;
  // Meshes of ten: a registration then costs O(mesh), as in a deployment of many small meshes.
  const frameOf = (i: number) =>
    frameFor(sockets[i]!, `${tag}-${i}`, `${tag}-${Math.floor(i / 10)}`, keyPairs[i]!);
  // All at once: every frame is signed before the first leaves, so the rate is the server's.
  const frames = opts.inflight ? [] : await Promise.all(sockets.map((_, i) => frameOf(i)));
  // Each registration's time from its frame leaving to `registered` arriving.
  const lat: number[] = [];
  const t1 = performance.now();
  let sent = 0;
  const send = async (i: number) => {
    const frame = frames[i] ?? (await frameOf(i));
    const at = performance.now();
    sockets[i]!.ws.send(frame);
    await sockets[i]!.registered;
    lat.push(performance.now() - at);
  };
  await Promise.all(
    Array.from({ length: Math.min(n, opts.inflight ?? n) }, async () => {
      while (sent < n) await send(sent++);
    }),
  );
  const registerMs = performance.now() - t1;
  lat.sort((a, b) => a - b);
  const q = (x: number) => lat[Math.min(lat.length - 1, Math.floor((x / 100) * lat.length))]!;
  out({
    phase: 'registered',
    n,
    connect_ms: connectMs,
    register_ms: registerMs,
    ms: performance.now() - t0,
    reg_p50: q(50),
    reg_p99: q(99),
    // Every latency (0.1 ms), for a percentile over several load processes.
    reg_lat: lat.map((x) => Math.round(x * 10) / 10),
  });
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
} else {
  // 2,000 msg/s spread over 40 sender/receiver pairs (50/s each): agents relay through signaling
  // at modest rates, and the server's per-socket rate limit (100/s) applies to each.
  const rate = opts.rate ?? 2000;
  const duration = opts.durationMs ?? 5000;
  const pairsN = opts.pairs ?? 40;
  const lat: number[] = [];
  const tag = `${process.pid}`;
  const pairs: { sender: Pending; to: string }[] = [];
  for (let k = 0; k < pairsN; k++) {
    const mesh = `relay-${tag}-${k}`;
    const receiver = await open((f) => {
      if (f.type === 'offer') lat.push(performance.now() - Number(f.sdp));
    }, opts.receiverUrl ?? opts.url);
    receiver.ws.send(await frameFor(receiver, `rb-${tag}-${k}`, mesh));
    await receiver.registered;
    const sender = await open();
    sender.ws.send(await frameFor(sender, `ra-${tag}-${k}`, mesh));
    await sender.registered;
    pairs.push({ sender, to: `rb-${tag}-${k}` });
  }
  const total = Math.round((rate * duration) / 1000);
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const p = pairs[i % pairs.length]!;
    p.sender.ws.send(JSON.stringify({ type: 'offer', to: p.to, sdp: String(performance.now()) }));
  }
  await new Promise((r) => setTimeout(r, 500));
  lat.sort((a, b) => a - b);
  const q = (x: number) => lat[Math.min(lat.length - 1, Math.floor((x / 100) * lat.length))]!;
  out({
    phase: 'relay',
    sent: total,
    received: lat.length,
    p50: q(50),
    p99: q(99),
    achieved_rate: (total * 1000) / (performance.now() - t0 - 500),
  });
  process.exit(0);
}
