// The signaling HTTP API's answers (CONTRACT §1), as zod schemas and the types inferred from them.
// The server builds every answer with these types (`satisfies`), and the client
// (src/clients/signaling.ts) checks every answer with these schemas: a shape change on either side
// breaks compilation or is a typed error, never an `undefined` three calls later. Unknown fields are
// dropped on parse (a newer server may add some); fields listed here are what ifmesh's server sends.
import { z } from 'zod';

export const connectionStateSchema = z.enum([
  'new',
  'connecting',
  'connected',
  'disconnected',
  'failed',
  'closed',
]);
export const candidateTypeSchema = z.enum(['host', 'srflx', 'prflx', 'relay']);
const count = z.number().int().nonnegative();
const clusterMode = z.enum(['standalone', 'redis']);
/** Which cluster an instance belongs to (only with --cluster): instances sharing it share a registry. */
const clusterId = z.string().min(1).max(64).optional();

/** GET /health: 200 while serving (ok, or degraded without its cluster store), 503 when draining. */
export const healthSchema = z.union([
  z.object({
    status: z.enum(['ok', 'degraded']),
    reason: z.string().optional(),
    instance_id: z.string(),
    cluster: clusterMode,
    cluster_id: clusterId,
    agents: count,
    uptime_s: z.number().nonnegative(),
    rotation: z.string().nullable(),
  }),
  z.object({
    status: z.literal('down'),
    reason: z.string(),
    instance_id: z.string(),
    cluster: clusterMode.optional(),
    cluster_id: clusterId,
    agents: count,
  }),
]);
export type Health = z.infer<typeof healthSchema>;

export const agentInfoSchema = z.object({
  agent_id: z.string(),
  public_key: z.string(),
  key_id: z.string(),
  connected_at: z.string(),
  /** The instance holding the agent's socket. */
  instance_id: z.string(),
  mesh: z.string(),
  host: z.string(),
  metadata: z.record(z.string(), z.unknown()),
});
export type AgentInfo = z.infer<typeof agentInfoSchema>;
export const agentsResponseSchema = z.object({ agents: z.array(agentInfoSchema) });
export type AgentsResponse = z.infer<typeof agentsResponseSchema>;

/** One agent's report about one peer (`connection-state` frames): agent_id -> peer_id. */
export const connectionInfoSchema = z.object({
  agent_id: z.string(),
  peer_id: z.string(),
  state: connectionStateSchema,
  candidate_type: candidateTypeSchema.nullable(),
  rtt_ms: z.number().nullable(),
  loss_ratio: z.number().nullable().optional(),
  updated_at: z.string(),
});
export type ConnectionInfo = z.infer<typeof connectionInfoSchema>;
export const connectionsResponseSchema = z.object({ connections: z.array(connectionInfoSchema) });
export type ConnectionsResponse = z.infer<typeof connectionsResponseSchema>;

export const statsResponseSchema = z.object({
  total_agents: count,
  local_agents: count,
  cluster: clusterMode,
  cluster_id: clusterId,
  connections: z.array(connectionInfoSchema),
  by_state: z.record(z.string(), count),
  relay_ratio: z.number(),
  instance_id: z.string(),
  uptime_s: z.number().nonnegative(),
  memory_rss_bytes: count,
});
export type StatsResponse = z.infer<typeof statsResponseSchema>;

/** GET /peers/:id */
export const peerResponseSchema = z.object({
  agent_id: z.string(),
  host: z.string(),
  public_key: z.string(),
  key_id: z.string(),
  connected_at: z.string(),
  instance_id: z.string(),
  mesh: z.string(),
  metadata: z.record(z.string(), z.unknown()),
});
export type PeerResponse = z.infer<typeof peerResponseSchema>;

export const bandwidthSettingsSchema = z.object({
  enableBandwidthAdaptation: z.boolean(),
  maxBitrateMbps: z.number().nullable(),
});

/** GET /config: the effective non-secret settings; pushed settings (bandwidth) join them. */
export const configResponseSchema = z.looseObject({
  turnFallbackTimeout: z.number(),
  iceTransportPolicy: z.enum(['all', 'relay']),
  stunServers: z.array(z.string()),
  turnServers: z.array(z.string()),
  heartbeatTimeoutMs: z.number(),
  statsIntervalMs: z.number(),
  bandwidth: bandwidthSettingsSchema.optional(),
});
export type ConfigResponse = z.infer<typeof configResponseSchema>;

/** POST /config/bandwidth */
export interface BandwidthRequest {
  enableBandwidthAdaptation: boolean;
  maxBitrateMbps?: number;
}
export const bandwidthResponseSchema = z.object({
  status: z.literal('ok'),
  pushed: count,
  bandwidth: bandwidthSettingsSchema,
});
export type BandwidthResponse = z.infer<typeof bandwidthResponseSchema>;

export const blockEntrySchema = z.object({
  agent_id: z.string(),
  public_key: z.string().nullable(),
  key_id: z.string().nullable(),
  reason: z.string(),
  blocked_at: z.string(),
});
export type BlockEntryInfo = z.infer<typeof blockEntrySchema>;
/** POST /admin/block */
export const blockResponseSchema = z.object({
  status: z.literal('blocked'),
  entry: blockEntrySchema,
  disconnected: count,
});
export type BlockResponse = z.infer<typeof blockResponseSchema>;
/** POST /admin/unblock, DELETE /admin/block */
export const unblockResponseSchema = z.object({ status: z.literal('unblocked'), entry: blockEntrySchema });
export type UnblockResponse = z.infer<typeof unblockResponseSchema>;
/** GET /admin/blocks */
export const blocksResponseSchema = z.object({ blocked: z.array(blockEntrySchema) });
export type BlocksResponse = z.infer<typeof blocksResponseSchema>;

/** POST /admin/rotate-keys */
export interface RotateKeysRequest {
  rotation_reason?: string;
  incident_id?: string;
  force_immediate?: boolean;
}
export const rotateKeysResponseSchema = z.object({
  status: z.literal('started'),
  rotation_id: z.string(),
  /** Agents asked to rotate: every agent of the cluster when instances share one. */
  total: count,
  started_at: z.string(),
});
export type RotateKeysResponse = z.infer<typeof rotateKeysResponseSchema>;

/** GET /admin/key-rotation-status (cluster-wide in a cluster; read without a token). */
export const keyRotationStatusSchema = z.union([
  z.object({
    status: z.literal('idle'),
    completed: z.literal(0),
    total: z.literal(0),
    rotation_id: z.null(),
  }),
  z.object({
    status: z.enum(['in_progress', 'completed']),
    rotation_id: z.string(),
    completed: count,
    total: count,
    pending: z.array(z.string()),
    started_at: z.string(),
    reason: z.string(),
  }),
]);
export type KeyRotationStatus = z.infer<typeof keyRotationStatusSchema>;

/** POST /admin/reload-config */
export interface ReloadConfigRequest {
  turn_servers: string[];
}
export const reloadConfigResponseSchema = z.object({
  status: z.literal('ok'),
  pushed: count,
  turn_servers: z.array(z.string()),
});
export type ReloadConfigResponse = z.infer<typeof reloadConfigResponseSchema>;

/** POST /admin/reconnect-turn-peers and POST /admin/reconnect-peers */
export const reconnectResponseSchema = z.object({
  status: z.literal('ok'),
  agents: z.array(z.string()),
  pushed: count,
});
export type ReconnectResponse = z.infer<typeof reconnectResponseSchema>;

/** Every error answer: 4xx/5xx with a stable code. */
export const errorResponseSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
export type ErrorResponse = z.infer<typeof errorResponseSchema>;
