// Signaling instances sharing one mesh through Redis. The registry (agent id -> key binding, which
// instance holds which socket) lives in Redis; frames travel over pub/sub: one channel per instance
// for relay, one per mesh for announcements, one for admin pushes. Each instance keeps a liveness
// key with a TTL and reaps the registrations of instances whose key expired, so a kill -9'd
// instance's agents leave the registry (and `agent-left` goes out) within the TTL. Whenever the
// connection to Redis comes back (a restart wiped it, or this instance was cut off long enough to
// be reaped), the instance reconciles: registrations it holds without a live socket go, live
// sockets without a registration are claimed again. Every message on those channels is sealed with
// the cluster secret and schema-checked on arrival (cluster-messages.ts): whoever can reach Redis
// but lacks the secret cannot announce agents, push config or blocks, or relay frames, and a
// malformed message is dropped, counted and logged instead of throwing in the subscriber.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { CLOSE } from '../../protocol/signaling.js';
import {
  type AnnMessage,
  type ClusterChannel,
  ClusterCodec,
  clusterKey,
  type DropReason,
  type RelayMessage,
} from './cluster-messages.js';
import { applyPush, rotationMetaStored } from './push.js';
import { LagTolerantRedis } from './redis-client.js';
import { RedisRegistry, RegistryUnavailableError } from './redis-registry.js';
import type { AgentRecord, Relay } from './registry.js';
import type { AdminPush, MeshCluster, MeshCore, RotationMeta, RotationView } from './types.js';

export interface RedisClusterOptions {
  /** redis:// or rediss:// (TLS), with `user:password@` for an ACL user or `:password@`. */
  url: string;
  instanceId: string;
  /**
   * SIGNALING_CLUSTER_SECRET: every instance of the cluster must hold the same one. Without it the
   * key is derived from the URL (its password included), which any holder of that URL can forge
   * with: a development fallback, refused in production by `signaling serve`.
   */
  secret?: string | undefined;
  /** How far a message's time may be from this instance's clock (default 30 s). */
  messageWindowMs?: number;
  /** Key and channel prefix, so several meshes (or tests) can share one Redis. */
  prefix?: string;
  /** Liveness TTL: an instance silent this long is reaped. At most 15 s. */
  ttlMs?: number;
  /** How long start() waits for Redis before the instance starts degraded. */
  connectWaitMs?: number;
  /** How long a command may go unanswered before Redis counts as unreachable (default 5 s). */
  commandTimeoutMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

type RelayFrame = Extract<RelayMessage, { to: string }>;

/** A dropped message is logged at most this often per reason (with a count), and audited less. */
const DROP_LOG_MS = 5_000;
const DROP_AUDIT_MS = 60_000;

const WHERE_TTL_MS = 5_000;
const WHERE_MAX = 100_000;

const ROTATION_TTL_S = 24 * 3600;

export class RedisCluster implements MeshCluster {
  readonly mode = 'redis' as const;
  readonly clusterId: string;
  readonly cmd: Redis;
  readonly sub: Redis;
  readonly registry: RedisRegistry;
  readonly relay: Relay;
  readonly ttlMs: number;
  private readonly aliveMs: number;
  private readonly prefix: string;
  private readonly me: string;
  private readonly log: NonNullable<RedisClusterOptions['log']>;
  private core: MeshCore | undefined;
  /**
   * The meshes whose announcements this instance is subscribed to (or subscribing to): every
   * registration into a mesh waits for the one SUBSCRIBE, so none claims before it can hear joins.
   */
  private readonly meshSubs = new Map<string, Promise<void>>();
  /**
   * Where agents held elsewhere are, so a relayed frame costs one publish, not a lookup too. Dropped
   * on any announcement about the agent and after WHERE_TTL_MS; a stale entry costs one forward.
   */
  private readonly where = new Map<string, { instanceId: string; mesh: string; at: number }>();
  /**
   * Frames to one agent leave in the order they came: a cache hit must not overtake a frame still
   * waiting for its lookup (an ICE candidate before its offer is dropped by the peer).
   */
  private readonly queues = new Map<string, Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private reconciled = false;
  private reconciling: Promise<void> | undefined;
  private closed = false;
  private lastErrorLog = 0;
  private readonly codec: ClusterCodec;
  private readonly drops = new Map<DropReason, { logged: number; audited: number; since: number }>();

  constructor(private readonly o: RedisClusterOptions) {
    this.prefix = o.prefix ?? 'ifmesh:';
    this.clusterId = clusterIdOf(o.url, this.prefix);
    this.me = o.instanceId;
    this.ttlMs = Math.min(15_000, Math.max(1_000, o.ttlMs ?? 10_000));
    // The key lives two thirds of the TTL and is refreshed (and others reaped) every third, so a
    // dead instance is reaped at most one TTL after its last refresh, and a live one may miss a beat.
    this.aliveMs = Math.round((this.ttlMs * 2) / 3);
    this.log = o.log ?? (() => {});
    this.codec = new ClusterCodec({
      key: clusterKey(o.secret || `unconfigured:${o.url}`, this.prefix),
      instanceId: this.me,
      windowMs: o.messageWindowMs,
    });
    const common = {
      // Fail fast while Redis is away: the instance serves what it holds and answers degraded.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      lazyConnect: true,
      retryStrategy: (n: number) => (this.closed ? null : Math.min(100 * n, 1_000)),
    };
    // Commands time out (redis-client.ts: not while this process itself kept the reply waiting);
    // the subscriber's do not (a SUBSCRIBE is answered when the subscription is made).
    this.cmd = new LagTolerantRedis(
      o.url,
      { ...common, connectionName: `ifmesh-${this.me}` },
      o.commandTimeoutMs ?? 5_000,
    );
    this.sub = new Redis(o.url, { ...common, connectionName: `ifmesh-${this.me}-sub` });
    for (const c of [this.cmd, this.sub]) c.on('error', (err: Error) => this.warn(err));
    this.registry = new RedisRegistry(this.cmd, this.prefix);
    this.relay = { deliver: (agentId, mesh, text) => this.deliver(agentId, mesh, text) };
  }

  private key(name: string): string {
    return `${this.prefix}${name}`;
  }

  private warn(err: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 5_000) return;
    this.lastErrorLog = now;
    this.log('warn', 'cluster store unreachable', { error: (err as Error)?.message ?? String(err) });
  }

  healthy(): boolean {
    return this.cmd.status === 'ready' && this.sub.status === 'ready' && this.reconciled;
  }

  async start(core: MeshCore): Promise<void> {
    this.core = core;
    if (!this.o.secret)
      this.log(
        'warn',
        'SIGNALING_CLUSTER_SECRET is not set: cluster messages are sealed with a key derived from the Redis URL',
        {
          hint: 'give every instance the same SIGNALING_CLUSTER_SECRET (ifmesh up and deploy generate one)',
        },
      );
    this.cmd.on('ready', () => {
      this.reconciled = false;
      void this.reconcile();
    });
    this.sub.on('ready', () => {
      // Subscribing again is harmless, and covers a Redis that restarted empty.
      const channels = [
        this.key(`relay:${this.me}`),
        this.key('admin'),
        ...[...this.meshSubs.keys()].map((m) => this.key(`ann:${m}`)),
      ];
      this.sub.subscribe(...channels).catch((err) => this.warn(err));
    });
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    const ready = Promise.all([this.cmd.connect().catch(() => {}), this.sub.connect().catch(() => {})]).then(
      () => this.reconciling,
    );
    const wait = this.o.connectWaitMs ?? 3_000;
    await Promise.race([ready, new Promise((r) => setTimeout(r, wait).unref())]);
    if (!this.healthy())
      this.log('warn', 'cluster store not reachable yet: starting degraded', { url: redact(this.o.url) });
    this.timer = setInterval(() => void this.tick(), Math.max(200, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** Refreshes this instance's liveness key, and reaps instances whose key expired. */
  private async tick(): Promise<void> {
    if (this.closed || this.cmd.status !== 'ready') return;
    try {
      const previous = await this.cmd.set(
        this.key(`alive:${this.me}`),
        String(Date.now()),
        'PX',
        this.aliveMs,
        'GET',
      );
      // Our key had expired: others may have reaped our agents (we were stalled or cut off).
      if (previous === null || !this.reconciled) await this.reconcile();
      for (const inst of await this.cmd.smembers(this.key('instances'))) {
        if (inst === this.me) continue;
        for (const rec of await this.registry.reap(inst)) await this.departed(rec, null);
      }
    } catch (err) {
      this.warn(err);
    }
  }

  /** Cleans up after a registration that went away without its socket closing here. */
  private async departed(rec: AgentRecord, origin: string | null): Promise<void> {
    const core = this.core!;
    core.metrics.forgotten(await this.registry.forget(rec.agentId));
    core.metrics.agentLeft(rec.agentId);
    this.announce(rec.mesh, { type: 'agent-left', agent_id: rec.agentId }, undefined, origin);
    core.event({
      event: 'agent_left',
      agent_id: rec.agentId,
      metadata: { instance_id: rec.instanceId, reaped_by: this.me },
    });
  }

  private reconcile(): Promise<void> {
    this.reconciling ??= this.doReconcile()
      .then(() => {
        this.reconciled = true;
      })
      .catch((err) => this.warn(err))
      .finally(() => {
        this.reconciling = undefined;
      });
    return this.reconciling;
  }

  private async doReconcile(): Promise<void> {
    const core = this.core!;
    await this.cmd.set(this.key(`alive:${this.me}`), String(Date.now()), 'PX', this.aliveMs);
    await this.cmd.sadd(this.key('instances'), this.me);
    for (const id of await this.registry.heldBy(this.me)) {
      const rec = await this.registry.get(id);
      const s = core.local.get(id);
      if (!rec || rec.instanceId !== this.me || s?.id === rec.sessionId) continue;
      // Our local agents in that mesh were told when the socket closed; tell the others.
      if (await this.registry.release(id, rec.sessionId)) await this.departed(rec, this.me);
    }
    let rebuilt = 0;
    for (const s of [...core.local.values()]) {
      if (!s.record || !s.agentId) continue;
      const rec = await this.registry.get(s.agentId);
      if (rec?.sessionId === s.id) continue;
      if (rec && rec.instanceId !== this.me) {
        // The agent registered on another instance meanwhile: this socket is the stale one.
        s.ws.close(CLOSE.replaced, 'registered from another connection');
        continue;
      }
      const claimed = await this.registry.claim(s.record);
      if (claimed.status === 'taken') {
        s.ws.close(CLOSE.unauthorized, 'agent_id_taken');
        continue;
      }
      rebuilt += 1;
      this.announce(
        s.mesh,
        { type: 'agent-joined', agent_id: s.agentId, public_key: s.record.publicKey },
        s.agentId,
      );
    }
    if (rebuilt) this.log('info', 'cluster registry rebuilt from live sockets', { agents: rebuilt });
  }

  private async deliver(agentId: string, mesh: string, text: string): Promise<boolean> {
    const pending = this.core!.registering.get(agentId);
    if (pending) return pending.then(() => this.deliver(agentId, mesh, text));
    const s = this.core!.local.get(agentId);
    if (s) {
      if (s.mesh !== mesh || s.ws.readyState !== s.ws.OPEN) return false;
      s.ws.send(text);
      return true;
    }
    const prev = this.queues.get(agentId);
    const p = prev
      ? prev.then(() => this.deliverRemote(agentId, mesh, text))
      : this.deliverRemote(agentId, mesh, text);
    const tail = p.catch(() => {});
    this.queues.set(agentId, tail);
    void tail.then(() => {
      if (this.queues.get(agentId) === tail) this.queues.delete(agentId);
    });
    return p;
  }

  private async deliverRemote(agentId: string, mesh: string, text: string): Promise<boolean> {
    const now = Date.now();
    const hit = this.where.get(agentId);
    if (hit && hit.mesh === mesh && now - hit.at < WHERE_TTL_MS) {
      // c: sent on a cached location; the receiver forwards it if the agent moved meanwhile.
      if ((await this.publishRelay(hit.instanceId, { to: agentId, mesh, t: text, c: 1 })) > 0) return true;
      this.where.delete(agentId);
    }
    return this.lookupAndRelay(agentId, mesh, text);
  }

  private async lookupAndRelay(agentId: string, mesh: string, text: string): Promise<boolean> {
    const rec = await this.registry.get(agentId);
    if (!rec || rec.mesh !== mesh || rec.instanceId === this.me) return false;
    if (this.where.size >= WHERE_MAX) this.where.clear();
    this.where.set(agentId, { instanceId: rec.instanceId, mesh, at: Date.now() });
    return (await this.publishRelay(rec.instanceId, { to: agentId, mesh, t: text })) > 0;
  }

  private publishRelay(instanceId: string, m: RelayMessage): Promise<number> {
    const channel = this.key(`relay:${instanceId}`);
    return this.cmd.publish(channel, this.codec.seal(channel, 'relay', m)).catch((err) => {
      throw new RegistryUnavailableError(err);
    });
  }

  /** Tells the instance that held `replaced` to close that socket: the agent registered here. */
  replaced(replaced: AgentRecord): void {
    if (replaced.instanceId === this.me) return;
    this.publishRelay(replaced.instanceId, { kick: replaced.agentId, session: replaced.sessionId }).catch(
      (err) => this.warn(err),
    );
  }

  private kindOf(channel: string): ClusterChannel | undefined {
    if (channel === this.key(`relay:${this.me}`)) return 'relay';
    if (channel === this.key('admin')) return 'admin';
    if (channel.startsWith(this.key('ann:'))) return 'ann';
    return undefined;
  }

  /** Every message is opened (HMAC, freshness, schema) before anything acts on it; nothing throws out. */
  private onMessage(channel: string, message: string): void {
    const core = this.core;
    const kind = this.kindOf(channel);
    if (!core || !kind) return;
    try {
      if (kind === 'relay') {
        const r = this.codec.open(channel, 'relay', message);
        if (!r.ok) {
          this.dropped(kind, r.reason, r.detail);
          return;
        }
        if ('kick' in r.m) this.kick(core, r.m.kick, r.m.session);
        else this.relayed(core, r.m);
      } else if (kind === 'admin') {
        const r = this.codec.open(channel, 'admin', message);
        if (!r.ok) {
          this.dropped(kind, r.reason, r.detail);
          return;
        }
        if (r.m.o !== this.me) applyPush(core, r.m.p);
      } else {
        const r = this.codec.open(channel, 'ann', message);
        if (!r.ok) {
          this.dropped(kind, r.reason, r.detail);
          return;
        }
        this.announced(core, channel.slice(this.key('ann:').length), r.m);
      }
    } catch (err) {
      this.dropped(kind, 'failed', (err as Error)?.message ?? String(err));
    }
  }

  /** Counts a refused message; logs it (and audits it, more rarely) with how many went unlogged. */
  private dropped(channel: ClusterChannel | 'store', reason: DropReason, detail: string): void {
    this.core?.metrics.clusterDropped.inc({ channel, reason });
    const now = Date.now();
    const d = this.drops.get(reason) ?? { logged: 0, audited: 0, since: 0 };
    this.drops.set(reason, d);
    d.since += 1;
    if (now - d.logged < DROP_LOG_MS) return;
    d.logged = now;
    const fields = { channel, reason, detail, dropped_since_last_log: d.since };
    d.since = 0;
    this.log('warn', 'cluster message dropped', fields);
    if (now - d.audited < DROP_AUDIT_MS) return;
    d.audited = now;
    this.core?.event({
      event: 'cluster_message_dropped',
      severity: 'warning',
      metadata: { ...fields, instance_id: this.me },
    });
  }

  private kick(core: MeshCore, agentId: string, session: string): void {
    const s = core.local.get(agentId);
    if (!s || s.id !== session) return;
    s.agentId = undefined;
    core.local.delete(agentId);
    core.meshes.get(s.mesh)?.delete(s);
    s.ws.close(CLOSE.replaced, 'registered from another connection');
  }

  private announced(core: MeshCore, mesh: string, m: AnnMessage): void {
    if (m.a) this.where.delete(m.a);
    if (m.o === this.me) return;
    for (const s of core.meshes.get(mesh) ?? []) {
      if (s.agentId === m.x || s.ws.readyState !== s.ws.OPEN) continue;
      s.ws.send(m.f);
    }
  }

  /** A frame another instance relayed to an agent of this one (waits for a registration in flight). */
  private relayed(core: MeshCore, m: RelayFrame): void {
    const pending = core.registering.get(m.to);
    if (pending) {
      void pending
        .then(() => this.relayed(core, m))
        .catch((err) => this.dropped('relay', 'failed', (err as Error)?.message ?? String(err)));
      return;
    }
    const s = core.local.get(m.to);
    if (s && s.mesh === m.mesh && s.ws.readyState === s.ws.OPEN) s.ws.send(m.t);
    // Sent to where the agent was: forward once to where it is now.
    else if (!s && m.c) void this.lookupAndRelay(m.to, m.mesh, m.t).catch((err) => this.warn(err));
  }

  announce(
    mesh: string,
    frame: Record<string, unknown>,
    exceptAgent?: string,
    origin: string | null = this.me,
  ): void {
    const about = typeof frame.agent_id === 'string' ? frame.agent_id : undefined;
    if (about) this.where.delete(about);
    const channel = this.key(`ann:${mesh}`);
    const m: AnnMessage = {
      o: origin,
      f: JSON.stringify(frame),
      ...(exceptAgent !== undefined ? { x: exceptAgent } : {}),
      ...(about !== undefined ? { a: about } : {}),
    };
    this.cmd.publish(channel, this.codec.seal(channel, 'ann', m)).catch((err) => this.warn(err));
  }

  async joinMesh(mesh: string): Promise<void> {
    const joined = this.meshSubs.get(mesh);
    if (joined) return joined;
    const joining = this.sub.subscribe(this.key(`ann:${mesh}`)).then(
      () => {},
      (err: unknown) => {
        if (this.meshSubs.get(mesh) === joining) this.meshSubs.delete(mesh);
        throw new RegistryUnavailableError(err);
      },
    );
    this.meshSubs.set(mesh, joining);
    return joining;
  }

  leaveMesh(mesh: string): void {
    if (!this.meshSubs.delete(mesh)) return;
    // Commands on one connection run in order, so a later joinMesh re-subscribes after this.
    this.sub.unsubscribe(this.key(`ann:${mesh}`)).catch(() => {});
  }

  async push(p: AdminPush): Promise<number> {
    const core = this.core!;
    try {
      const channel = this.key('admin');
      await this.cmd.publish(channel, this.codec.seal(channel, 'admin', { o: this.me, p }));
    } catch (err) {
      throw new RegistryUnavailableError(err);
    }
    applyPush(core, p);
    return p.kind === 'reconnect' ? Object.keys(p.peers).length : this.registry.count();
  }

  async rotationStart(meta: RotationMeta): Promise<number> {
    const ids = (await this.registry.list()).map((a) => a.agentId);
    const targets = this.key(`rot:${meta.rotation_id}:targets`);
    const m = this.cmd.multi().set(this.key('rotation'), JSON.stringify(meta), 'EX', ROTATION_TTL_S);
    if (ids.length) m.sadd(targets, ...ids).expire(targets, ROTATION_TTL_S);
    try {
      await m.exec();
    } catch (err) {
      throw new RegistryUnavailableError(err);
    }
    return ids.length;
  }

  async rotationComplete(rotationId: string, agentId: string): Promise<void> {
    const done = this.key(`rot:${rotationId}:done`);
    await this.cmd.multi().sadd(done, agentId).expire(done, ROTATION_TTL_S).exec();
  }

  async rotationStatus(): Promise<RotationView | undefined> {
    let raw: string | null;
    try {
      raw = await this.cmd.get(this.key('rotation'));
    } catch (err) {
      throw new RegistryUnavailableError(err);
    }
    if (!raw) return undefined;
    let meta: RotationMeta;
    try {
      meta = rotationMetaStored.parse(JSON.parse(raw));
    } catch (err) {
      this.dropped('store', 'malformed', `rotation: ${(err as Error).message.slice(0, 200)}`);
      return undefined;
    }
    const [targets, done] = await Promise.all([
      this.cmd.smembers(this.key(`rot:${meta.rotation_id}:targets`)),
      this.cmd.smembers(this.key(`rot:${meta.rotation_id}:done`)),
    ]);
    const t = new Set(targets);
    return { ...meta, targets, completed: done.filter((a) => t.has(a)) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.cmd.status === 'ready') {
      try {
        await this.cmd.del(this.key(`alive:${this.me}`));
        for (const rec of await this.registry.reap(this.me, true)) await this.departed(rec, null);
      } catch (err) {
        this.warn(err);
      }
    }
    await Promise.race([
      Promise.allSettled([this.cmd.quit(), this.sub.quit()]),
      new Promise((r) => setTimeout(r, 1_000).unref()),
    ]);
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}

/**
 * A short stable name of the cluster an instance joins: the Redis server and database (without
 * credentials, which rotate and must not leak) plus the key prefix. Instances given the same URL and
 * prefix share a registry; spell the URL the same way on every instance (localhost ≠ 127.0.0.1 here).
 */
export function clusterIdOf(url: string, prefix: string): string {
  let where: string;
  try {
    const u = new URL(url);
    const db = Number(u.pathname.replace(/^\//, '') || 0);
    where = `${u.hostname.toLowerCase()}:${u.port || '6379'}/${Number.isFinite(db) ? db : 0}`;
  } catch {
    where = url.replace(/\/\/[^@/]*@/, '//');
  }
  return `redis-${createHash('sha256').update(`${where}\n${prefix}`).digest('hex').slice(0, 12)}`;
}

/** A Redis URL without its password, for logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparseable)';
  }
}
