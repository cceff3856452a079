import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Gauge } from 'prom-client';
import { type WebSocket, WebSocketServer } from 'ws';
import { CLOSE } from '../../protocol/signaling.js';
import type { WitnessEvent } from '../../protocol/witness.js';
import { requestUrl } from '../http/util.js';
import { BlockList } from './block-list.js';
import { handleHttp } from './http-api.js';
import { SignalingMetrics } from './metrics.js';
import { standaloneCluster } from './push.js';
import { MemoryRegistry } from './registry.js';
import { ReportGuard } from './report-guard.js';
import { openSession } from './sessions.js';
import type { MeshCore, Session, SignalingDeps } from './types.js';

export interface SignalingServer {
  http: Server;
  core: MeshCore;
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** ws:// or wss:// URL of the listener. */
  readonly url: string;
  /** http:// or https:// URL of the same listener. */
  readonly httpUrl: string;
  /** Drains: /health 503, agents closed with 1012 so they fail over, last witness event, then stops. */
  close(): Promise<void>;
}

// Frames over this size are refused by ws itself (close 1009) before they are buffered; frames up to
// it are read and refused by the protocol (error frame + 4400) above FRAME_MAX_BYTES.
const WS_HARD_LIMIT = 1024 * 1024;

function reject(socket: Socket, status: number, reason: string): void {
  const body = JSON.stringify({ error: { code: reason, message: reason } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export function createSignalingServer(deps: SignalingDeps): SignalingServer {
  const log = deps.log ?? (() => {});
  const now = deps.now ?? Date.now;
  const metrics = new SignalingMetrics();
  const registry = deps.registry ?? new MemoryRegistry();
  const cluster = deps.cluster ?? standaloneCluster();
  const local = new Map<string, Session>();
  const meshes = new Map<string, Set<Session>>();
  const core: MeshCore = {
    deps,
    registry,
    blocks: deps.blockList ?? new BlockList(),
    cluster,
    metrics,
    reports: new ReportGuard({ now, metrics, local, registry }),
    local,
    registering: new Map(),
    meshes,
    sessions: new Set(),
    settings: { ...deps.settings },
    rotation: undefined,
    draining: false,
    startedAt: now(),
    now,
    log,
    relay: deps.relay ?? {
      deliver: async (agentId, mesh, text) => {
        const s = local.get(agentId);
        if (!s || s.mesh !== mesh || s.ws.readyState !== s.ws.OPEN) return false;
        s.ws.send(text);
        return true;
      },
    },
    event(event: WitnessEvent) {
      deps.events?.log({
        ...event,
        metadata: { instance_id: deps.instanceId, ...(event.metadata as object) },
      });
    },
    send(session, frame) {
      if (session.ws.readyState === session.ws.OPEN) session.ws.send(JSON.stringify(frame));
    },
    broadcast(frame, except, mesh) {
      const text = JSON.stringify(frame);
      let n = 0;
      for (const s of mesh === undefined ? local.values() : (meshes.get(mesh) ?? [])) {
        if (s === except || s.ws.readyState !== s.ws.OPEN) continue;
        s.ws.send(text);
        n += 1;
      }
      return n;
    },
    announce(frame, mesh, except) {
      core.broadcast(frame, except, mesh);
      cluster.announce(mesh, frame, except?.agentId);
    },
  };
  // Which instance this is and in which mode: a cluster's /metrics are scraped per instance.
  new Gauge({
    name: 'webrtc_signaling_instance_info',
    help: 'This signaling instance (value 1); cluster is "redis" or "standalone"',
    labelNames: ['instance_id', 'cluster'],
    registers: [metrics.registry],
  }).set({ instance_id: deps.instanceId, cluster: cluster.mode }, 1);
  new Gauge({
    name: 'webrtc_signaling_cluster_agents',
    help: 'Agents registered on every instance of the mesh (this one included)',
    registers: [metrics.registry],
    async collect() {
      try {
        this.set(await registry.count());
      } catch {
        this.reset();
      }
    },
  });

  const onRequest = (req: IncomingMessage, res: import('node:http').ServerResponse) =>
    void handleHttp(core, req, res);
  // Node checks header and request timeouts only every connectionsCheckingInterval (30 s by default).
  const checking = { connectionsCheckingInterval: Math.min(1_000, deps.headersTimeoutMs ?? 10_000) };
  const http: Server = deps.tls
    ? createHttpsServer({ cert: deps.tls.cert, key: deps.tls.key, ...checking }, onRequest)
    : createHttpServer(checking, onRequest);
  // Slowloris and stuck clients: bounded time to send headers and a whole request.
  http.headersTimeout = deps.headersTimeoutMs ?? 10_000;
  http.requestTimeout = Math.max(http.headersTimeout, 30_000);
  http.keepAliveTimeout = 5_000;

  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: WS_HARD_LIMIT,
    clientTracking: false,
  });
  const perIp = new Map<string, number>();
  const cap = deps.maxConnectionsPerIp ?? 1000;

  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {});
    const ip = req.socket.remoteAddress ?? 'unknown';
    if (core.draining) return reject(socket, 503, 'draining');
    const url = requestUrl(req.url, 'http://signaling');
    if (!url) return reject(socket, 400, 'bad_request');
    if (url.pathname !== '/') return reject(socket, 404, 'not_found');
    const origin = req.headers.origin;
    if (origin && deps.allowedOrigins && !deps.allowedOrigins.includes(origin)) {
      metrics.unauthorized.inc();
      return reject(socket, 403, 'origin_not_allowed');
    }
    const count = perIp.get(ip) ?? 0;
    if (count >= cap) {
      metrics.signalingErrors.inc({ code: 'too_many_connections' });
      return reject(socket, 429, 'too_many_connections');
    }
    perIp.set(ip, count + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n <= 0) perIp.delete(ip);
      else perIp.set(ip, n);
    };
    socket.once('close', release);
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      openSession(core, ws, ip);
    });
  });

  // Heartbeat: ping every half reap period; a socket that missed a whole period is terminated.
  const reapMs = deps.reapAfterMs ?? 30_000;
  const heartbeat = setInterval(
    () => {
      for (const s of core.sessions) {
        if (!s.alive) {
          s.ws.terminate();
          continue;
        }
        s.alive = false;
        try {
          s.ws.ping();
        } catch {
          s.ws.terminate();
        }
      }
    },
    Math.max(50, Math.floor(reapMs / 2)),
  );
  heartbeat.unref();

  let address: AddressInfo | undefined;
  let closing: Promise<void> | undefined;
  const base = (scheme: string) => {
    if (!address) throw new Error('signaling server is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `${scheme}${deps.tls ? 's' : ''}://${host}:${address.port}`;
  };

  return {
    http,
    core,
    get url() {
      return base('ws');
    },
    get httpUrl() {
      return base('http');
    },
    listen(port, host = '127.0.0.1') {
      return cluster.start(core).then(
        () =>
          new Promise((resolve, rejectListen) => {
            http.once('error', rejectListen);
            http.listen(port, host, () => {
              http.off('error', rejectListen);
              address = http.address() as AddressInfo;
              core.event({
                event: 'signaling_server_started',
                metadata: { url: base('ws'), pid: process.pid },
              });
              resolve(address);
            });
          }),
      );
    },
    close() {
      closing ??= (async () => {
        core.draining = true;
        clearInterval(heartbeat);
        for (const s of core.sessions) s.ws.close(CLOSE.serviceRestart, 'server shutting down');
        core.event({
          event: 'signaling_server_stopped',
          metadata: { agents: local.size, reason: 'shutdown' },
        });
        await new Promise((r) => setTimeout(r, deps.drainMs ?? 500).unref());
        for (const s of core.sessions) s.ws.terminate();
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeIdleConnections();
          setTimeout(() => {
            http.closeAllConnections();
            resolve();
          }, 1_000).unref();
        });
        // Whatever registrations are left (sockets whose release did not reach the store) go now.
        await cluster.close();
      })();
      return closing;
    },
  };
}
