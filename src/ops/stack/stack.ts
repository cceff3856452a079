import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Dispatcher } from 'undici';
import { httpRequest } from '../../clients/http.js';
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

/** The kernel's ephemeral range's first port (ip_local_port_range), 32768 where it cannot be read. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * `n` consecutive loopback ports, free for TCP and UDP, below the kernel's ephemeral range: a port
 * planned now is bound seconds later (a stack starts its services one after another), and a port
 * of the ephemeral range can be taken in between by any outgoing connection or `listen(0)` on the
 * host. Ports handed out by this process are not handed out again.
 */
export async function freePortRange(n: number): Promise<number> {
  const lo = 20_000;
  const hi = ephemeralLow() - n;
  if (hi - lo < 1_000)
    throw new Error(`the ephemeral port range starts at ${hi + n}: no room below it for ${n} ports`);
  for (let attempt = 0; attempt < 200; attempt++) {
    const start = lo + Math.floor(Math.random() * (hi - lo));
    let ok = true;
    for (let p = start; p < start + n && ok; p++) ok = !handedOut.has(p) && (await canBind(p));
    if (!ok) continue;
    for (let p = start; p < start + n; p++) handedOut.add(p);
    return start;
  }
  throw new Error(`no ${n} consecutive free loopback ports between ${lo} and ${hi + n}`);
}

export function freePort(): Promise<number> {
  return freePortRange(1);
}

export async function httpHealthy(url: string, dispatcher?: Dispatcher): Promise<boolean> {
  try {
    const r = await httpRequest(`${url}/health`, { timeoutMs: 1_000, dispatcher });
    return r.status === 200 && r.text.includes('"status":"ok"');
  } catch {
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
