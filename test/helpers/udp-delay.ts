import { createSocket, type Socket } from 'node:dgram';

export interface UdpDelay {
  port: number;
  /** Changes the delay for datagrams from now on (a path that becomes slow under a live link). */
  setDelay(ms: number): void;
  stop(): Promise<void>;
}

/**
 * A UDP relay on loopback that holds every datagram `delayMs` in each direction before passing it on:
 * a slow path (like netem delay) between an agent and its TURN server, with one upstream socket per
 * client so the server sees each client apart.
 */
export async function startUdpDelay(
  target: { host: string; port: number },
  delayMs: number,
): Promise<UdpDelay> {
  const front = createSocket('udp4');
  const upstreams = new Map<string, Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let delay = delayMs;
  const later = (fn: () => void) => {
    if (delay === 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, delay);
    timers.add(t);
  };
  front.on('error', () => {});
  front.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let up = upstreams.get(key);
    if (!up) {
      up = createSocket('udp4');
      up.on('error', () => {});
      up.on('message', (back) => later(() => front.send(back, rinfo.port, rinfo.address)));
      up.bind(0, '127.0.0.1');
      upstreams.set(key, up);
    }
    const u = up;
    later(() => u.send(msg, target.port, target.host));
  });
  await new Promise<void>((resolve) => front.bind(0, '127.0.0.1', resolve));
  return {
    port: front.address().port,
    setDelay(ms) {
      delay = ms;
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      for (const u of upstreams.values()) u.close();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}
