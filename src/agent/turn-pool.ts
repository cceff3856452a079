// TURN servers in order of health and latency. werift uses only the first TURN URL it is given, so
// the agent tries one server per attempt, in the order this pool gives, and reports failures here.
// The agent keeps a second pool of its STUN servers (kind 'stun'): werift also uses only the first
// STUN URL, and a dead one costs every gathering its 5 s STUN timeout — the whole fallback timeout.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { parseIceUrl } from '../config/ice-url.js';
import { formatDuration } from '../ui/units.js';
import type { IceServer } from './agent.js';

export interface TurnServerState {
  server: IceServer;
  host: string;
  port: number;
  failures: number;
  healthy: boolean;
  latencyMs: number | null;
}

/** A STUN Binding request (RFC 5389): coturn answers it on its TURN port. Resolves with the RTT in ms. */
export function stunProbe(host: string, port: number, timeoutMs = 1_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const tx = randomBytes(12);
    const req = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), tx]);
    const t0 = performance.now();
    // Once only: an error after the answer (or a second answer) must not close the socket twice,
    // which throws ERR_SOCKET_DGRAM_NOT_RUNNING outside any caller.
    let settled = false;
    const done = (err?: Error, rtt?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(rtt!);
    };
    const timer = setTimeout(
      () => done(new Error(`no STUN answer from ${host}:${port} in ${formatDuration(timeoutMs)}`)),
      timeoutMs,
    );
    socket.on('error', (err) => done(err));
    socket.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(tx))
        done(undefined, performance.now() - t0);
    });
    socket.send(req, port, host);
  });
}

export type PoolEvent = 'server_marked_unhealthy' | 'all_servers_unhealthy' | 'server_health_check_success';

export interface TurnPoolOptions {
  servers: IceServer[];
  /** Which servers the pool holds: its URLs' schemes and its events' names (default turn). */
  kind?: 'turn' | 'stun';
  /** Failures before a server is marked unhealthy (circuit open). */
  threshold?: number;
  checkIntervalMs?: number;
  probe?: (host: string, port: number) => Promise<number>;
  /** Events named for the kind: turn_server_marked_unhealthy, all_stun_servers_unhealthy, … */
  onEvent: (event: string, metadata: Record<string, unknown>) => void;
}

export class TurnPool {
  readonly states: TurnServerState[];
  private timer: NodeJS.Timeout | undefined;
  private readonly threshold: number;
  private readonly probe: (host: string, port: number) => Promise<number>;
  private allDownReported = false;
  private rechecking: Promise<void> | undefined;
  private readonly kind: 'turn' | 'stun';

  constructor(private readonly o: TurnPoolOptions) {
    this.threshold = o.threshold ?? 3;
    this.kind = o.kind ?? 'turn';
    this.probe = o.probe ?? ((h, p) => stunProbe(h, p));
    this.states = o.servers.flatMap((server) => {
      const p = parseIceUrl(server.urls, this.kind === 'turn' ? ['turn', 'turns'] : ['stun', 'stuns']);
      return typeof p === 'string'
        ? []
        : [{ server, host: p.host, port: p.port, failures: 0, healthy: true, latencyMs: null }];
    });
  }

  get size(): number {
    return this.states.length;
  }

  start(): Promise<void> {
    const every = this.o.checkIntervalMs ?? 30_000;
    this.timer = setInterval(() => void this.check(), every);
    this.timer.unref();
    return this.check();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Probes every server; a healthy answer closes its circuit again. */
  async check(): Promise<void> {
    await Promise.all(
      this.states.map(async (s) => {
        try {
          s.latencyMs = await this.probe(s.host, s.port);
          const wasDown = !s.healthy;
          s.failures = 0;
          s.healthy = true;
          if (wasDown)
            this.emit('server_health_check_success', { server: s.server.urls, latency_ms: s.latencyMs });
        } catch {
          this.failure(s.server.urls);
        }
      }),
    );
  }

  /**
   * After a link was lost: probes every healthy server at once, up to the circuit's threshold of
   * tries each (stopping at its first answer), so a dead server's circuit opens within seconds
   * instead of at the next periodic check, when both ends of a relayed pair would still pick it.
   * Calls while one runs share it.
   */
  recheck(): Promise<void> {
    this.rechecking ??= Promise.all(
      this.states
        .filter((s) => s.healthy)
        .map(async (s) => {
          for (let i = 0; i < this.threshold && s.healthy; i++) {
            try {
              s.latencyMs = await this.probe(s.host, s.port);
              s.failures = 0;
              return;
            } catch {
              this.failure(s.server.urls);
            }
          }
        }),
    )
      .then(() => {})
      .finally(() => {
        this.rechecking = undefined;
      });
    return this.rechecking;
  }

  /** Resolves once no recheck is running: what a new attempt waits for before choosing a server. */
  settled(): Promise<void> {
    return this.rechecking ?? Promise.resolve();
  }

  /** Healthy servers, lowest latency first. */
  ordered(): IceServer[] {
    return this.states
      .filter((s) => s.healthy)
      .sort((a, b) => (a.latencyMs ?? Number.POSITIVE_INFINITY) - (b.latencyMs ?? Number.POSITIVE_INFINITY))
      .map((s) => s.server);
  }

  failure(url: string): void {
    const s = this.states.find((x) => x.server.urls === url);
    if (!s) return;
    s.failures += 1;
    if (s.healthy && s.failures >= this.threshold) {
      s.healthy = false;
      this.emit('server_marked_unhealthy', { server: url, failures: s.failures });
    }
    const anyHealthy = this.states.some((x) => x.healthy);
    if (!anyHealthy && !this.allDownReported) {
      this.allDownReported = true;
      this.emit('all_servers_unhealthy', { servers: this.states.map((x) => x.server.urls) });
    }
    if (anyHealthy) this.allDownReported = false;
  }

  /** `server_marked_unhealthy` → turn_server_marked_unhealthy, `server` → turn_server (or stun_). */
  private emit(event: PoolEvent, metadata: Record<string, unknown>): void {
    const k = this.kind;
    const name = event === 'all_servers_unhealthy' ? `all_${k}_servers_unhealthy` : `${k}_${event}`;
    this.o.onEvent(
      name,
      Object.fromEntries(
        Object.entries(metadata).map(([key, v]) => [key.startsWith('server') ? `${k}_${key}` : key, v]),
      ),
    );
  }
}
