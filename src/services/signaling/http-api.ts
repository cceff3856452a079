import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseIceUrl } from '../../config/ice-url.js';
import { fromBase64url, KeyFormatError } from '../../crypto/ed25519.js';
import { AGENT_ID_RULE, isAgentId } from '../../protocol/ids.js';
import { CLOSE } from '../../protocol/signaling.js';
import type {
  AgentsResponse,
  BandwidthResponse,
  BlockResponse,
  BlocksResponse,
  ConfigResponse,
  ConnectionsResponse,
  ErrorResponse,
  Health,
  KeyRotationStatus,
  PeerResponse,
  ReconnectResponse,
  ReloadConfigResponse,
  RotateKeysResponse,
  StatsResponse,
  UnblockResponse,
} from '../../protocol/signaling-api.js';
import type { BindingsResponse, RebindResponse } from '../../protocol/signaling-identity.js';
import { AuthFailureLimiter } from '../http/auth-failures.js';
import { badTarget, bearerMatches, HttpError, readBody, requestUrl, sendJson } from '../http/util.js';
import { disconnectBlocked } from './push.js';
import { RegistryUnavailableError } from './redis-registry.js';
import type { ConnectionReport } from './registry.js';
import type { MeshCore } from './types.js';

type Handler = (core: MeshCore, req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

/** Admin bodies are small JSON whatever the Content-Type; an empty body reads as {}. */
async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req, 64 * 1024);
  if (raw.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `body is not valid JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw new HttpError(400, 'invalid_json', 'body must be a JSON object');
  return v as Record<string, unknown>;
}

/**
 * Which failed admin calls get an audit entry of their own (src/services/http/auth-failures.ts):
 * every one is answered 401 and counted, but a flood makes a handful of witness entries, not one each.
 */
const authFailures = new WeakMap<MeshCore, AuthFailureLimiter>();
function authLimiter(core: MeshCore): AuthFailureLimiter {
  let limiter = authFailures.get(core);
  if (!limiter) {
    limiter = new AuthFailureLimiter({
      now: core.now,
      onSummary: (suppressed) =>
        core.event({
          event: 'signaling_auth_failures_suppressed',
          severity: 'warning',
          metadata: { suppressed, instance_id: core.deps.instanceId },
        }),
    });
    authFailures.set(core, limiter);
  }
  return limiter;
}

function admin(core: MeshCore, req: IncomingMessage): void {
  const token = core.deps.adminToken;
  if (!token || !bearerMatches(req, token)) {
    core.metrics.unauthorized.inc();
    const remote = req.socket.remoteAddress ?? 'unknown';
    const verdict = authLimiter(core).failure(remote);
    if (verdict.audit)
      core.event({
        event: 'signaling_auth_failure',
        severity: 'warning',
        action: `${req.method} ${req.url}`.slice(0, 200),
        metadata: { remote, instance_id: core.deps.instanceId, suppressed_before: verdict.suppressed },
      });
    else core.metrics.unauthorizedUnaudited.inc();
    throw new HttpError(
      401,
      'unauthorized',
      token ? 'missing or wrong bearer token' : 'admin API disabled: no admin token configured',
    );
  }
}

function agentIdOf(b: Record<string, unknown>): string {
  const id = b.agent_id;
  if (!isAgentId(id)) throw new HttpError(400, 'invalid_request', `agent_id: ${AGENT_ID_RULE}`);
  return id;
}

async function unblock(core: MeshCore, res: ServerResponse, id: string): Promise<void> {
  const entry = core.blocks.remove(id);
  if (!entry) throw new HttpError(404, 'not_blocked', `${id} is not blocked`);
  if (core.cluster.mode !== 'standalone') await core.cluster.push({ kind: 'unblock', agent_id: id });
  core.event({
    event: 'agent_unblocked',
    agent_id: id,
    metadata: { key_id: entry.key_id, instance_id: core.deps.instanceId },
  });
  sendJson(res, 200, { status: 'unblocked', entry } satisfies UnblockResponse);
}

/**
 * `ifmesh agents rebind`: binds an id to a new key (an agent that lost its key, or was squatted
 * before bindings existed). The previous key is revoked and its registration, wherever it is, closed
 * (4409 id_key_mismatch); the bindings are shared (Redis, or the state directory's file), so every
 * instance refuses the old key from now on.
 */
async function rebind(core: MeshCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  admin(core, req);
  const b = await body(req);
  const id = agentIdOf(b);
  const key = b.public_key;
  try {
    if (typeof key !== 'string') throw new KeyFormatError('public_key: required');
    fromBase64url(key, 32, 'public_key');
  } catch (err) {
    if (!(err instanceof KeyFormatError)) throw err;
    throw new HttpError(400, 'invalid_request', `${err.message} (a base64url Ed25519 public key)`);
  }
  const reason =
    typeof b.reason === 'string' && b.reason.trim() ? b.reason.trim().slice(0, 200) : 'unspecified';
  const r = await core.registry.rebind(id, key as string, new Date(core.now()).toISOString());
  if (r.status === 'revoked')
    throw new HttpError(
      409,
      'key_revoked',
      `key ${r.revocation.key_id} was revoked (${r.revocation.reason} on ${r.revocation.revoked_at}); generate a new key for ${id}`,
    );
  let disconnected = 0;
  const holder = r.holder;
  if (holder) {
    const s = core.local.get(id);
    if (s && s.id === holder.sessionId) {
      // Its close releases the registration and announces the departure (sessions.ts).
      core.send(s, { type: 'error', code: 'id_key_mismatch', message: `${id} was rebound to another key` });
      s.ws.close(CLOSE.idKeyMismatch, 'id_key_mismatch');
    } else {
      core.cluster.replaced(holder);
      if (await core.registry.release(id, holder.sessionId)) {
        core.metrics.forgotten(await core.registry.forget(id));
        core.metrics.agentLeft(id);
        core.announce({ type: 'agent-left', agent_id: id }, holder.mesh);
      }
    }
    disconnected = 1;
  }
  core.event({
    event: 'agent_rebound',
    agent_id: id,
    severity: 'warning',
    metadata: {
      reason,
      key_id: r.binding.key_id,
      previous_key_id: r.previous?.key_id ?? null,
      revoked_key_id: r.revoked?.key_id ?? null,
      disconnected,
      instance_id: core.deps.instanceId,
    },
  });
  sendJson(res, 200, {
    status: 'rebound',
    agent_id: id,
    binding: r.binding,
    previous: r.previous ?? null,
    revoked: r.revoked ?? null,
    disconnected,
  } satisfies RebindResponse);
}

/**
 * The stored reports, less those that say a pair is up ('new', 'connecting', 'connected') when one of
 * its agents is no longer registered. Such a report outlives its peer when the reporter re-sent it as
 * the peer went (its link had not yet timed out) and its later 'closed', naming a peer no longer
 * registered, was refused. A 'failed' or 'closed' report about a peer that has gone stays: it is what
 * the monitoring's failed-connections alert and `top` show after an agent is killed.
 */
async function liveConnections(core: MeshCore): Promise<ConnectionReport[]> {
  const [reports, agents] = await Promise.all([core.registry.connections(), core.registry.list()]);
  const ids = new Set(agents.map((a) => a.agentId));
  return reports.filter((c) => !UP_STATES.has(c.state) || (ids.has(c.agent_id) && ids.has(c.peer_id)));
}
const UP_STATES = new Set(['new', 'connecting', 'connected']);

const routes: Record<string, Handler> = {
  'GET /health': async (core, _req, res) => {
    const agents = core.local.size;
    const uptime_s = Math.round((core.now() - core.startedAt) / 1000);
    // cluster_id (an extension): instances answering the same one share a registry, so a view
    // over several instances counts their agents once and an admin push goes to one of them.
    const cluster = {
      cluster: core.cluster.mode,
      ...(core.cluster.clusterId ? { cluster_id: core.cluster.clusterId } : {}),
    };
    if (core.draining)
      return sendJson(res, 503, {
        status: 'down',
        reason: 'draining',
        instance_id: core.deps.instanceId,
        ...cluster,
        agents,
      } satisfies Health);
    // Cluster store unreachable: this instance still relays for the agents it holds, so it is
    // serving (200, not the contract's 503 "not serving"), but "degraded" is not "ok", so the
    // runbook's grep '"status":"ok"' and `ifmesh status` flag it (docs/signaling.md, "Scaling out").
    const healthy = core.cluster.healthy();
    sendJson(res, 200, {
      status: healthy ? 'ok' : 'degraded',
      ...(healthy ? {} : { reason: 'cluster_store_unreachable' }),
      instance_id: core.deps.instanceId,
      ...cluster,
      agents,
      uptime_s,
      rotation: core.rotation?.rotation_id ?? null,
    } satisfies Health);
  },
  'GET /agents': async (core, _req, res) => {
    const agents = (await core.registry.list()).map((a) => ({
      agent_id: a.agentId,
      public_key: a.publicKey,
      key_id: a.keyId,
      connected_at: a.connectedAt,
      instance_id: a.instanceId,
      mesh: a.mesh,
      host: a.remote,
      metadata: a.metadata,
    }));
    sendJson(res, 200, { agents } satisfies AgentsResponse);
  },
  'GET /connections': async (core, _req, res) => {
    sendJson(res, 200, { connections: await liveConnections(core) } satisfies ConnectionsResponse);
  },
  'GET /stats': async (core, _req, res) => {
    const connections = await liveConnections(core);
    const by_state: Record<string, number> = {};
    for (const c of connections) by_state[c.state] = (by_state[c.state] ?? 0) + 1;
    const connected = connections.filter((c) => c.state === 'connected');
    const relay = connected.filter((c) => c.candidate_type === 'relay').length;
    sendJson(res, 200, {
      total_agents: await core.registry.count(),
      local_agents: core.local.size,
      cluster: core.cluster.mode,
      ...(core.cluster.clusterId ? { cluster_id: core.cluster.clusterId } : {}),
      connections,
      by_state,
      relay_ratio: connected.length ? relay / connected.length : 0,
      instance_id: core.deps.instanceId,
      uptime_s: Math.round((core.now() - core.startedAt) / 1000),
      memory_rss_bytes: process.memoryUsage.rss(),
    } satisfies StatsResponse);
  },
  'GET /metrics': async (core, _req, res) => {
    const text = await core.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': core.metrics.registry.contentType });
    res.end(text);
  },
  'GET /config': async (core, _req, res) => {
    sendJson(res, 200, core.settings satisfies ConfigResponse);
  },
  'POST /config/bandwidth': async (core, req, res) => {
    const b = await body(req);
    if (typeof b.enableBandwidthAdaptation !== 'boolean')
      throw new HttpError(400, 'invalid_request', 'enableBandwidthAdaptation: true or false');
    if (
      b.maxBitrateMbps !== undefined &&
      (typeof b.maxBitrateMbps !== 'number' || !(b.maxBitrateMbps > 0) || b.maxBitrateMbps > 10_000)
    ) {
      throw new HttpError(400, 'invalid_request', 'maxBitrateMbps: a number of Mbit/s above 0');
    }
    const bandwidth = {
      enableBandwidthAdaptation: b.enableBandwidthAdaptation,
      maxBitrateMbps: b.maxBitrateMbps ?? null,
    };
    const pushed = await core.cluster.push({
      kind: 'config',
      settings: { bandwidth },
      frame: { type: 'config', bandwidth },
    });
    core.event({
      event: 'bandwidth_config_pushed',
      metadata: { ...bandwidth, pushed, instance_id: core.deps.instanceId },
    });
    sendJson(res, 200, { status: 'ok', pushed, bandwidth } satisfies BandwidthResponse);
  },
  'POST /admin/block': async (core, req, res) => {
    admin(core, req);
    const b = await body(req);
    const id = agentIdOf(b);
    const reason =
      typeof b.reason === 'string' && b.reason.trim() ? b.reason.trim().slice(0, 200) : 'unspecified';
    const rec = await core.registry.get(id);
    const entry = core.blocks.add({
      agent_id: id,
      public_key: rec?.publicKey ?? null,
      key_id: rec?.keyId ?? null,
      reason,
      blocked_at: new Date(core.now()).toISOString(),
    });
    // This instance drops what it holds of the identity (its id, or its key under another id); in a
    // cluster the push makes every other instance update its list and do the same.
    // A registration held by another instance of the cluster is closed there by the push: counted
    // here too, or a block from the "wrong" instance would report no connection closed.
    const elsewhere = rec && rec.instanceId !== core.deps.instanceId ? 1 : 0;
    const disconnected = disconnectBlocked(core, entry) + elsewhere;
    if (core.cluster.mode !== 'standalone') await core.cluster.push({ kind: 'block', entry });
    core.event({
      event: 'agent_blocked',
      agent_id: id,
      severity: 'warning',
      metadata: { reason, key_id: entry.key_id, disconnected, instance_id: core.deps.instanceId },
    });
    sendJson(res, 200, { status: 'blocked', entry, disconnected } satisfies BlockResponse);
  },
  'DELETE /admin/block': async (core, req, res, url) => {
    admin(core, req);
    await unblock(core, res, url.searchParams.get('agent_id') ?? agentIdOf(await body(req)));
  },
  'POST /admin/unblock': async (core, req, res) => {
    admin(core, req);
    await unblock(core, res, agentIdOf(await body(req)));
  },
  'POST /admin/agents/rebind': rebind,
  'GET /admin/agents/bindings': async (core, req, res) => {
    admin(core, req);
    sendJson(res, 200, (await core.registry.identities()) satisfies BindingsResponse);
  },
  'GET /admin/blocks': async (core, req, res) => {
    admin(core, req);
    sendJson(res, 200, { blocked: core.blocks.list() } satisfies BlocksResponse);
  },
  'POST /admin/rotate-keys': async (core, req, res) => {
    admin(core, req);
    const b = await body(req);
    const rotation = {
      rotation_id: `rot-${randomUUID()}`,
      started_at: new Date(core.now()).toISOString(),
      reason: typeof b.rotation_reason === 'string' ? b.rotation_reason.slice(0, 200) : 'unspecified',
      incident_id: typeof b.incident_id === 'string' ? b.incident_id.slice(0, 200) : null,
      force_immediate: b.force_immediate === true,
    };
    // Targets are recorded before the push, so no agent's keys-rotated can arrive before them.
    const total = await core.cluster.rotationStart(rotation);
    await core.cluster.push({ kind: 'rotate', rotation });
    core.event({
      event: 'key_rotation_started',
      incident_id: rotation.incident_id ?? undefined,
      metadata: { rotation_id: rotation.rotation_id, total, reason: rotation.reason },
    });
    sendJson(res, 200, {
      status: 'started',
      rotation_id: rotation.rotation_id,
      total,
      started_at: rotation.started_at,
    } satisfies RotateKeysResponse);
  },
  'GET /admin/key-rotation-status': async (core, _req, res) => {
    const r = await core.cluster.rotationStatus();
    if (!r)
      return sendJson(res, 200, {
        status: 'idle',
        completed: 0,
        total: 0,
        rotation_id: null,
      } satisfies KeyRotationStatus);
    const done = new Set(r.completed);
    const completed = r.targets.filter((a) => done.has(a)).length;
    const pending = r.targets.filter((a) => !done.has(a));
    sendJson(res, 200, {
      status: completed === r.targets.length ? 'completed' : 'in_progress',
      rotation_id: r.rotation_id,
      completed,
      total: r.targets.length,
      pending,
      started_at: r.started_at,
      reason: r.reason,
    } satisfies KeyRotationStatus);
  },
  'POST /admin/reload-config': async (core, req, res) => {
    admin(core, req);
    const b = await body(req);
    if (!Array.isArray(b.turn_servers) || b.turn_servers.length === 0 || b.turn_servers.length > 16) {
      throw new HttpError(400, 'invalid_request', 'turn_servers: an array of 1-16 turn: URLs');
    }
    const urls = b.turn_servers.map((u, i) => {
      const parsed = typeof u === 'string' ? parseIceUrl(u, ['turn', 'turns']) : 'not a string';
      if (typeof parsed === 'string')
        throw new HttpError(400, 'invalid_request', `turn_servers[${i}]: ${parsed}`);
      return parsed.url;
    });
    const pushed = await core.cluster.push({
      kind: 'config',
      settings: { turnServers: urls },
      frame: { type: 'config', turn_servers: urls },
    });
    core.event({
      event: 'turn_servers_reloaded',
      metadata: { turn_servers: urls, pushed, instance_id: core.deps.instanceId },
    });
    sendJson(res, 200, { status: 'ok', pushed, turn_servers: urls } satisfies ReloadConfigResponse);
  },
  'POST /admin/reconnect-turn-peers': async (core, req, res) => {
    admin(core, req);
    await body(req);
    const relayed = new Map<string, string[]>();
    for (const c of await liveConnections(core)) {
      if (c.candidate_type !== 'relay') continue;
      // One end per pair: both ends reconnecting at once offer to each other and tear down both links.
      if (relayed.get(c.peer_id)?.includes(c.agent_id)) continue;
      relayed.set(c.agent_id, [...(relayed.get(c.agent_id) ?? []), c.peer_id]);
    }
    const pushed = await core.cluster.push({ kind: 'reconnect', peers: Object.fromEntries(relayed) });
    core.event({
      event: 'turn_peers_reconnect_requested',
      metadata: { agents: pushed, instance_id: core.deps.instanceId },
    });
    sendJson(res, 200, { status: 'ok', agents: [...relayed.keys()], pushed } satisfies ReconnectResponse);
  },
  // Manual mesh healing (failover scenario C): each named agent offers afresh to the peers given.
  'POST /admin/reconnect-peers': async (core, req, res) => {
    admin(core, req);
    const b = await body(req);
    const peers = b.peers as Record<string, unknown> | undefined;
    const entries = peers && typeof peers === 'object' && !Array.isArray(peers) ? Object.entries(peers) : [];
    if (
      entries.length === 0 ||
      entries.length > 1_000 ||
      !entries.every(
        ([, l]) => Array.isArray(l) && l.length <= 1_000 && l.every((x) => typeof x === 'string'),
      )
    )
      throw new HttpError(400, 'invalid_request', 'peers: an object of agent id -> array of peer ids');
    const asked = Object.fromEntries(entries) as Record<string, string[]>;
    const pushed = await core.cluster.push({ kind: 'reconnect', peers: asked, reason: 'manual_healing' });
    core.event({
      event: 'mesh_reconnect_requested',
      metadata: { agents: Object.keys(asked), pushed, instance_id: core.deps.instanceId },
    });
    sendJson(res, 200, { status: 'ok', agents: Object.keys(asked), pushed } satisfies ReconnectResponse);
  },
};

export async function handleHttp(core: MeshCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const parsed = requestUrl(req.url, 'http://signaling');
  const url = parsed ?? new URL('http://signaling/');
  try {
    if (!parsed) throw badTarget();
    const peer = /^\/peers\/([^/]+)$/.exec(url.pathname);
    if (peer && req.method === 'GET') {
      let id: string;
      try {
        id = decodeURIComponent(peer[1]!);
      } catch {
        throw new HttpError(400, 'bad_request', 'the agent id in the path is not valid percent-encoding');
      }
      const a = await core.registry.get(id);
      if (!a) throw new HttpError(404, 'unknown_peer', `no agent ${id.slice(0, 64)} is registered`);
      return sendJson(res, 200, {
        agent_id: a.agentId,
        host: a.remote,
        public_key: a.publicKey,
        key_id: a.keyId,
        connected_at: a.connectedAt,
        instance_id: a.instanceId,
        mesh: a.mesh,
        metadata: a.metadata,
      } satisfies PeerResponse);
    }
    const handler = routes[`${req.method} ${url.pathname}`];
    if (!handler) {
      const known = Object.keys(routes).some((r) => r.endsWith(` ${url.pathname}`));
      throw known
        ? new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`)
        : new HttpError(404, 'not_found', `no route ${url.pathname}`);
    }
    await handler(core, req, res, url);
  } catch (err) {
    const e =
      err instanceof HttpError
        ? err
        : err instanceof RegistryUnavailableError
          ? new HttpError(503, 'cluster_unavailable', `${err.message}; retry shortly`)
          : new HttpError(500, 'internal', (err as Error).message);
    if (e.status >= 500) core.log('error', 'request failed', { path: url.pathname, error: e.message });
    if (!res.headersSent)
      sendJson(res, e.status, { error: { code: e.code, message: e.message } } satisfies ErrorResponse);
    else res.destroy();
  }
}
