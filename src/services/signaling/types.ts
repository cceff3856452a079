import type { WebSocket } from 'ws';
import type { WitnessEvent } from '../../protocol/witness.js';
import type { BlockList } from './block-list.js';
import type { SignalingMetrics } from './metrics.js';
import type { MeshRegistry, Relay } from './registry.js';

/** Anything that takes witness events: the spooling WitnessClient, or a recorder in tests. */
export interface EventSink {
  log(event: WitnessEvent): void;
}

export interface RateLimit {
  /** Bucket size: frames a client may send at once. */
  burst: number;
  /** Frames per second added back. */
  perSecond: number;
  /** Frames refused before the socket is closed (4429). */
  disconnectAfter: number;
}

/** Non-secret settings served at GET /config and pushed to agents. */
export interface MeshSettings {
  turnFallbackTimeout: number;
  iceTransportPolicy: 'all' | 'relay';
  stunServers: string[];
  turnServers: string[];
  heartbeatTimeoutMs: number;
  statsIntervalMs: number;
  [extra: string]: unknown;
}

export interface SignalingDeps {
  instanceId: string;
  adminToken?: string | undefined;
  /** When set, only these base64url public keys may register. */
  allowedKeys?: ReadonlySet<string> | undefined;
  /** When set, browser upgrades must come from one of these Origins (requests without Origin pass). */
  allowedOrigins?: readonly string[] | undefined;
  maxConnectionsPerIp?: number;
  registerTimeoutMs?: number;
  nonceTtlMs?: number;
  /** A socket that answers no ping for this long is terminated. */
  reapAfterMs?: number;
  /** HTTP: time allowed for a request's headers (slowloris), default 10 s. */
  headersTimeoutMs?: number;
  /** How long /health answers 503 before the listener closes on shutdown. */
  drainMs?: number;
  rateLimit?: Partial<RateLimit>;
  settings: MeshSettings;
  /** Refused identities (`ifmesh agents block`); in memory when not given. */
  blockList?: BlockList;
  registry?: MeshRegistry;
  relay?: Relay;
  events?: EventSink | undefined;
  tls?: { cert: string; key: string } | undefined;
  now?: () => number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface Session {
  id: string;
  ws: WebSocket;
  ip: string;
  nonce: string;
  nonceIssuedAt: number;
  nonceUsed: boolean;
  agentId: string | undefined;
  publicKey: string | undefined;
  mesh: string;
  alive: boolean;
  tokens: number;
  lastRefill: number;
  refused: number;
  registerTimer: NodeJS.Timeout | undefined;
}

export interface KeyRotation {
  rotation_id: string;
  started_at: string;
  reason: string;
  incident_id: string | null;
  force_immediate: boolean;
  targets: Set<string>;
  completed: Set<string>;
}

/** What the WebSocket sessions and the HTTP API share. */
export interface MeshCore {
  deps: SignalingDeps;
  registry: MeshRegistry;
  blocks: BlockList;
  relay: Relay;
  metrics: SignalingMetrics;
  /** Local sessions by registered agent id. */
  local: Map<string, Session>;
  /** Local registered sessions by mesh, so announcements cost O(mesh), not O(all agents). */
  meshes: Map<string, Set<Session>>;
  sessions: Set<Session>;
  settings: MeshSettings;
  rotation: KeyRotation | undefined;
  draining: boolean;
  startedAt: number;
  now: () => number;
  log: NonNullable<SignalingDeps['log']>;
  event(event: WitnessEvent): void;
  send(session: Session, frame: Record<string, unknown>): void;
  /** Sends to every registered local session, or those of one mesh; returns how many. */
  broadcast(frame: Record<string, unknown>, except?: Session, mesh?: string): number;
}
