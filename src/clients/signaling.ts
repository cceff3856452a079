// The one client of the signaling HTTP API (STYLE rule 15; Vercel's src/util/client.ts is the model):
// every answer is checked against the schema the server builds it with (src/protocol/signaling-api.ts),
// and every failure is a typed error naming the URL: unreachable (exit 3), refused token (exit 4),
// an error answer or a malformed one (exit 1). Ops never rewrite ws:// into http:// themselves.
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import { CheckFailedError, UnauthorizedError } from '../errors.js';
import {
  type AgentsResponse,
  agentsResponseSchema,
  type BandwidthRequest,
  type BandwidthResponse,
  type BlockResponse,
  type BlocksResponse,
  bandwidthResponseSchema,
  blockResponseSchema,
  blocksResponseSchema,
  type ConfigResponse,
  type ConnectionsResponse,
  configResponseSchema,
  connectionsResponseSchema,
  errorResponseSchema,
  type Health,
  healthSchema,
  type KeyRotationStatus,
  keyRotationStatusSchema,
  type PeerResponse,
  peerResponseSchema,
  type ReconnectResponse,
  type ReloadConfigResponse,
  type RotateKeysRequest,
  type RotateKeysResponse,
  reconnectResponseSchema,
  reloadConfigResponseSchema,
  rotateKeysResponseSchema,
  type StatsResponse,
  statsResponseSchema,
  type UnblockResponse,
  unblockResponseSchema,
} from '../protocol/signaling-api.js';
import { type HttpAnswer, type HttpOptions, httpRequest } from './http.js';

/** ws(s):// and http(s):// name the same server (one port): this is its HTTP API's base URL. */
export function httpUrlOf(url: string): string {
  return url
    .trim()
    .replace(/^ws(s?):\/\//i, 'http$1://')
    .replace(/\/+$/, '');
}

/** The WebSocket URL agents dial for a signaling server given either way. */
export function wsUrlOf(url: string): string {
  return url
    .trim()
    .replace(/^http(s?):\/\//i, 'ws$1://')
    .replace(/\/+$/, '');
}

/** The server answered with an error status (its `error.code` when it gave one). */
export class SignalingHttpError extends CheckFailedError {
  constructor(
    readonly url: string,
    readonly status: number,
    readonly apiCode: string | null,
    message: string,
  ) {
    super(message, 'check the signaling instance (ifmesh status, ifmesh logs)', 'signaling_http_error');
  }
}

/** The server answered 2xx, but not with what ifmesh's signaling API sends (another service? a proxy?). */
export class SignalingMalformedError extends CheckFailedError {
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(message, 'check that the URL is an ifmesh signaling server of this version', 'signaling_malformed');
  }
}

export interface SignalingClientOptions {
  dispatcher?: Dispatcher | undefined;
  /** Per request; default 5 s. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Bearer token of the /admin/* mutations. */
  adminToken?: string | undefined;
}

function describeIssues(err: z.ZodError): string {
  const issues = err.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
  return `${issues.join('; ')}${err.issues.length > 3 ? ` (and ${err.issues.length - 3} more)` : ''}`;
}

interface Call<T> {
  method?: 'GET' | 'POST';
  body?: unknown;
  admin?: boolean;
  schema: z.ZodType<T>;
  /** Statuses besides 200 whose body is an answer (503 for a draining instance's /health). */
  also?: number[];
}

export class SignalingClient {
  /** The HTTP API's base URL (http:// or https://, no trailing slash). */
  readonly url: string;

  constructor(
    url: string,
    private readonly o: SignalingClientOptions = {},
  ) {
    this.url = httpUrlOf(url);
  }

  /** One HTTP exchange; a network failure or timeout is UnreachableError naming the server. */
  private exchange(path: string, opts: HttpOptions): Promise<HttpAnswer> {
    return httpRequest(`${this.url}${path}`, {
      ...opts,
      timeoutMs: this.o.timeoutMs ?? 5_000,
      dispatcher: this.o.dispatcher,
      signal: this.o.signal,
    });
  }

  /** Checks one exchange's answer against `c.schema`; see the class comment for the errors. */
  private async call<T>(path: string, c: Call<T>): Promise<T> {
    const url = `${this.url}${path}`;
    if (c.admin && !this.o.adminToken)
      // Not sent without a token: the server would count it in webrtc_unauthorized_attempts_total.
      throw new UnauthorizedError(
        `no signaling admin token for ${c.method ?? 'GET'} ${url}`,
        'set SIGNALING_ADMIN_TOKEN, or run against the local stack whose admin.token is in the state dir',
      );
    const a = await this.exchange(path, {
      method: c.method ?? 'GET',
      ...(c.body === undefined ? {} : { body: JSON.stringify(c.body) }),
      headers: this.o.adminToken && c.admin ? { authorization: `Bearer ${this.o.adminToken}` } : {},
    });
    if (a.status === 401 || a.status === 403)
      throw new UnauthorizedError(
        `${url} refused the admin token (${a.status})`,
        'set SIGNALING_ADMIN_TOKEN, or run against the local stack whose admin.token is in the state dir',
      );
    if (a.status !== 200 && !c.also?.includes(a.status)) {
      const e = errorResponseSchema.safeParse(a.json);
      const why = e.success ? `${e.data.error.code}: ${e.data.error.message}` : a.text.slice(0, 120);
      throw new SignalingHttpError(
        url,
        a.status,
        e.success ? e.data.error.code : null,
        `${url} answered HTTP ${a.status}${why ? ` (${why})` : ''}`,
      );
    }
    if (a.json === undefined)
      throw new SignalingMalformedError(url, `${url} answered HTTP ${a.status} without a JSON body`);
    const r = c.schema.safeParse(a.json);
    if (!r.success)
      throw new SignalingMalformedError(
        url,
        `${url} answered HTTP ${a.status} with a malformed body: ${describeIssues(r.error)}`,
      );
    return r.data;
  }

  /** GET /health: ok or degraded (200), or down while draining (503): all three are answers. */
  health(): Promise<Health> {
    return this.call('/health', { schema: healthSchema, also: [503] });
  }

  agents(): Promise<AgentsResponse> {
    return this.call('/agents', { schema: agentsResponseSchema });
  }

  connections(): Promise<ConnectionsResponse> {
    return this.call('/connections', { schema: connectionsResponseSchema });
  }

  stats(): Promise<StatsResponse> {
    return this.call('/stats', { schema: statsResponseSchema });
  }

  /** GET /peers/:id; null when no agent of that id is registered. */
  async peer(agentId: string): Promise<PeerResponse | null> {
    try {
      return await this.call(`/peers/${encodeURIComponent(agentId)}`, { schema: peerResponseSchema });
    } catch (err) {
      if (err instanceof SignalingHttpError && err.status === 404) return null;
      throw err;
    }
  }

  config(): Promise<ConfigResponse> {
    return this.call('/config', { schema: configResponseSchema });
  }

  /** GET /metrics: Prometheus text exposition. */
  async metrics(): Promise<string> {
    const url = `${this.url}/metrics`;
    const a = await this.exchange('/metrics', {});
    if (a.status !== 200)
      throw new SignalingHttpError(url, a.status, null, `${url} answered HTTP ${a.status}`);
    return a.text;
  }

  /** POST /config/bandwidth: pushed to every agent of the instance's cluster. */
  setBandwidth(body: BandwidthRequest): Promise<BandwidthResponse> {
    return this.call('/config/bandwidth', { method: 'POST', body, schema: bandwidthResponseSchema });
  }

  block(agentId: string, reason?: string): Promise<BlockResponse> {
    const body = { agent_id: agentId, ...(reason ? { reason } : {}) };
    return this.call('/admin/block', { method: 'POST', body, admin: true, schema: blockResponseSchema });
  }

  /** POST /admin/unblock; a SignalingHttpError with status 404 when the agent is not blocked. */
  unblock(agentId: string): Promise<UnblockResponse> {
    const body = { agent_id: agentId };
    return this.call('/admin/unblock', { method: 'POST', body, admin: true, schema: unblockResponseSchema });
  }

  blocks(): Promise<BlocksResponse> {
    return this.call('/admin/blocks', { admin: true, schema: blocksResponseSchema });
  }

  rotateKeys(body: RotateKeysRequest): Promise<RotateKeysResponse> {
    return this.call('/admin/rotate-keys', {
      method: 'POST',
      body,
      admin: true,
      schema: rotateKeysResponseSchema,
    });
  }

  /** Read-only (the runbook polls it without a token). */
  keyRotationStatus(): Promise<KeyRotationStatus> {
    return this.call('/admin/key-rotation-status', { schema: keyRotationStatusSchema });
  }

  reloadConfig(turnServers: string[]): Promise<ReloadConfigResponse> {
    const body = { turn_servers: turnServers };
    return this.call('/admin/reload-config', {
      method: 'POST',
      body,
      admin: true,
      schema: reloadConfigResponseSchema,
    });
  }

  reconnectTurnPeers(): Promise<ReconnectResponse> {
    const schema = reconnectResponseSchema;
    return this.call('/admin/reconnect-turn-peers', { method: 'POST', body: {}, admin: true, schema });
  }

  /** Each named agent offers afresh to the peers listed (manual mesh healing). */
  reconnectPeers(peers: Record<string, string[]>): Promise<ReconnectResponse> {
    const schema = reconnectResponseSchema;
    return this.call('/admin/reconnect-peers', { method: 'POST', body: { peers }, admin: true, schema });
  }
}

/** Instances answering one cluster_id share a registry; an instance without one is its own group. */
export interface ClusterGroup<T> {
  cluster_id: string | null;
  members: T[];
}

/** Groups instances by the cluster their /health names, in the order first seen. */
export function groupByCluster<T extends { url: string; health?: Health | null | undefined }>(
  instances: readonly T[],
): ClusterGroup<T>[] {
  const groups = new Map<string, ClusterGroup<T>>();
  for (const i of instances) {
    const id = i.health?.cluster_id ?? null;
    const key = id === null ? `instance\u0000${i.url}` : `cluster\u0000${id}`;
    const g = groups.get(key);
    if (g) g.members.push(i);
    else groups.set(key, { cluster_id: id, members: [i] });
  }
  return [...groups.values()];
}
