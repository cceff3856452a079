import type { WebSocket } from 'ws';
import type { WitnessEvent } from '../../protocol/witness.js';
import type { AllowList } from './allow-list.js';
import type { BlockEntry, BlockList } from './block-list.js';
import type { SignalingMetrics } from './metrics.js';
import type { AgentRecord, MeshRegistry, Relay } from './registry.js';
import type { ReportGuard } from './report-guard.js';

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
  /** When set, only the listed (agent id, public key) pairs may register (`--allow-keys`). */
  allowList?: AllowList | undefined;
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
  /**
   * Registrations, and the id → key bindings and revoked keys: `new MemoryRegistry(new
   * IdentityFile(path))` persists them standalone; in memory only when not given.
   */
  registry?: MeshRegistry;
  relay?: Relay;
  /** What instances share beyond the registry (announcements, admin pushes, rotation state). */
  cluster?: MeshCluster;
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
  /** The registration this socket holds, kept to re-claim it when the cluster store was lost. */
  record?: AgentRecord | undefined;
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

export interface RotationMeta {
  rotation_id: string;
  started_at: string;
  reason: string;
  incident_id: string | null;
  force_immediate: boolean;
}

/** A rotation as /admin/key-rotation-status reports it (cluster-wide in a cluster). */
export interface RotationView extends RotationMeta {
  targets: string[];
  completed: string[];
}

/** An admin push, applied by every instance to the agents it holds. */
export type AdminPush =
  | { kind: 'config'; settings: Partial<MeshSettings>; frame: Record<string, unknown> }
  | { kind: 'rotate'; rotation: RotationMeta }
  | { kind: 'reconnect'; peers: Record<string, string[]>; reason?: string }
  /** `ifmesh agents block|unblock`: every instance updates its block list and drops the identity. */
  | { kind: 'block'; entry: BlockEntry }
  | { kind: 'unblock'; agent_id: string };

/**
 * What instances share beyond the registry. Standalone, this instance is the whole mesh; over
 * Redis, announcements and pushes reach every instance and rotation state is kept in Redis.
 */
export interface MeshCluster {
  readonly mode: 'standalone' | 'redis';
  /** Which cluster this instance belongs to (GET /health cluster_id); null when standalone. */
  readonly clusterId: string | null;
  /** False while the shared store is unreachable (the instance still serves the agents it holds). */
  healthy(): boolean;
  start(core: MeshCore): Promise<void>;
  /** Sends an announcement to the mesh's agents on the other instances (the caller did the local ones). */
  announce(mesh: string, frame: Record<string, unknown>, exceptAgent?: string): void;
  /** Subscribes this instance to a mesh's announcements before it lists the mesh's peers. */
  joinMesh(mesh: string): Promise<void>;
  leaveMesh(mesh: string): void;
  /** A registration here replaced `rec`; the instance holding its socket closes it (4409). */
  replaced(rec: AgentRecord): void;
  /** Applies `push` on every instance; returns how many agents it is addressed to. */
  push(push: AdminPush): Promise<number>;
  /** Records a rotation's targets (every agent of the cluster) before the push goes out. */
  rotationStart(meta: RotationMeta): Promise<number>;
  rotationComplete(rotationId: string, agentId: string): Promise<void>;
  rotationStatus(): Promise<RotationView | undefined>;
  close(): Promise<void>;
}

/** What the WebSocket sessions and the HTTP API share. */
export interface MeshCore {
  deps: SignalingDeps;
  registry: MeshRegistry;
  blocks: BlockList;
  relay: Relay;
  cluster: MeshCluster;
  metrics: SignalingMetrics;
  /** Bounds and rate limits on what agents' reports may do to /metrics and /connections. */
  reports: ReportGuard;
  /** Local sessions by registered agent id. */
  local: Map<string, Session>;
  /**
   * Registrations in flight on this instance, by agent id: a frame relayed to one waits until its
   * `registered` is out (in a cluster, a peer can see the claim in the shared registry and send an
   * offer before this instance has finished registering the agent).
   */
  registering: Map<string, Promise<void>>;
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
  /** Broadcasts to the mesh here and on every other instance. */
  announce(frame: Record<string, unknown>, mesh: string, except?: Session): void;
}
