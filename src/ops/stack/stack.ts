import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Dispatcher } from 'undici';
import { answeredFix, httpRequest, isUnverifiedCertificate } from '../../clients/http.js';
import { writeStateJson } from '../../state/json-file.js';
import type { StackFile } from '../../state/stack-plan.js';
import type { StateDir } from '../../state/state-dir.js';

export { readStack, type StackFile, urls } from '../../state/stack-plan.js';

/** Written whole and synced (tmp + fsync + rename), like every state file. */
export function writeStack(state: StateDir, s: StackFile): void {
  writeStateJson(state.stack, s);
}

const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const tcp = createServer();
    tcp.once('error', () => resolve(false));
    tcp.listen(port, '127.0.0.1', () =>
      tcp.close(() => {
        // coturn listens on UDP as well as TCP on its port.
        const udp = createSocket('udp4');
        udp.once('error', () => {
          udp.close();
          resolve(false);
        });
        udp.bind(port, '127.0.0.1', () => udp.close(() => resolve(true)));
      }),
    );
  });
}

/** The kernel's ephemeral range (ip_local_port_range), 32768–60999 where it cannot be read. */
export function ephemeralRange(file = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] {
  try {
    const [low, high] = readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low! > 0 && high! >= low!) return [low!, high!];
  } catch {
    // unreadable (not Linux, a sandbox): the kernel's default
  }
  return [32_768, 60_999];
}

/**
 * Where `n` consecutive ports are planned: below the ephemeral range (from 20000), else above it,
 * else — a host tuned to hand out almost every port (`1024 65000`) — anywhere from 1024, where the
 * race with outgoing connections is back and a start may have to be retried.
 */
export function planningWindow([low, high]: [number, number], n: number): [number, number] {
  const room = 1_000;
  if (low - n - 20_000 >= room) return [20_000, low - n];
  if (65_535 - n - high >= room) return [high + 1, 65_535 - n + 1];
  return [1_024, 65_535 - n + 1];
}

/**
 * `n` consecutive loopback ports, free for TCP and UDP, outside the kernel's ephemeral range: a port
 * planned now is bound seconds later (a stack starts its services one after another), and a port
 * of the ephemeral range can be taken in between by any outgoing connection or `listen(0)` on the
 * host. Ports handed out by this process are not handed out again.
 */
export async function freePortRange(n: number, random: () => number = Math.random): Promise<number> {
  const [lo, hi] = planningWindow(ephemeralRange(), n);
  for (let attempt = 0; attempt < 200; attempt++) {
    const start = lo + Math.floor(random() * (hi - lo));
    let ok = true;
    for (let p = start; p < start + n && ok; p++) ok = !handedOut.has(p) && (await canBind(p));
    if (!ok) continue;
    for (let p = start; p < start + n; p++) handedOut.add(p);
    return start;
  }
  throw new Error(`no ${n} consecutive free loopback ports between ${lo} and ${hi + n - 1}`);
}

export function freePort(): Promise<number> {
  return freePortRange(1);
}

/**
 * Whether `url` answers /health with status ok. `throwUntrusted`: a certificate this command cannot
 * verify (no --ca on a TLS fleet) throws its one-line error instead of counting as no answer;
 * `throwAnswered`: that, and TLS on an http:// URL (the operator's URL, not the service, is wrong).
 */
export async function httpHealthy(
  url: string,
  dispatcher?: Dispatcher,
  o: { throwUntrusted?: boolean; throwAnswered?: boolean } = {},
): Promise<boolean> {
  try {
    const r = await httpRequest(`${url}/health`, { timeoutMs: 1_000, dispatcher });
    return r.status === 200 && r.text.includes('"status":"ok"');
  } catch (err) {
    if (o.throwUntrusted && isUnverifiedCertificate(err)) throw err;
    if (o.throwAnswered && answeredFix(err)) throw err;
    return false;
  }
}

export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.setTimeout(1_000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}
