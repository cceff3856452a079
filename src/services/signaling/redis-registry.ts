// The MeshRegistry over Redis, shared by every instance of a cluster. Each change that must be
// atomic across instances (claim, release, report, forget, reaping a dead instance) is one Lua
// script, so two instances racing for one agent id can never both win. Standalone Redis (or
// Sentinel) only: the scripts touch keys they compute, which Redis Cluster does not allow.
//
// Layout under `prefix`:  agents (hash id -> record JSON), mesh:<m> (set of ids),
// inst:<instance> (set of ids it holds), reports (hash "a\0b" -> report JSON),
// rep:<id> (set of report fields by or about id), bindings (hash id -> KeyBinding JSON, kept when
// the agent leaves), revoked (hash public key -> Revocation JSON).
import type { Redis } from 'ioredis';
import { type IdentityFile, type KeyBinding, MAX_CHAIN, type Revocation } from './identities.js';
import {
  type AgentRecord,
  type ClaimOptions,
  type ClaimResult,
  type ConnectionReport,
  keyIdOf,
  type MeshRegistry,
  type RebindResult,
} from './registry.js';
import { TickBatch } from './tick-batch.js';

/** The cluster store could not be reached; callers answer 503 / close with "try again later". */
export class RegistryUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`cluster registry unreachable: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'RegistryUnavailableError';
  }
}

// Binding first (identities.ts decideBinding, in Lua so that two instances racing for one id
// cannot both bind it): a revoked key is refused; an unbound id is bound to this key; an id bound to
// another key is refused unless \`rot\` carries a rotation (verified by the caller) from the bound
// key, which moves the binding and revokes the old key. \`seedB\`/\`seedR\` seed a binding and a
// revocation from the instance's local mirror, for a Redis that restarted empty. Then the
// registration: a holder of the id (the same agent reconnecting, or a superseded key) is replaced.
//
// One call claims a batch: ARGV[1] is the prefix, then CLAIM_ARGS arguments per claim, applied in
// order exactly as separate calls would be (a later claim of an id in the batch meets the binding an
// earlier one made), and the whole batch is atomic against every other instance.
const CLAIM_ARGS = 6;
const CLAIM = `
local function claim(P, id, rec, via, rot, seedB, seedR)
local new = cjson.decode(rec)
if seedR ~= '' then redis.call('HSETNX', P..'revoked', new.publicKey, seedR) end
local rv = redis.call('HGET', P..'revoked', new.publicKey)
if rv then return {'revoked', rv} end
if seedB ~= '' then redis.call('HSETNX', P..'bindings', id, seedB) end
local b = redis.call('HGET', P..'bindings', id)
local rotated = false
if not b then
  b = cjson.encode({agent_id=id, public_key=new.publicKey, key_id=new.keyId, bound_at=new.connectedAt, via=via})
  redis.call('HSET', P..'bindings', id, b)
else
  local h = cjson.decode(b)
  if h.public_key ~= new.publicKey then
    if rot == '' then return {'mismatch', b} end
    local r = cjson.decode(rot)
    if r.previous_key ~= h.public_key or r.public_key ~= new.publicKey then return {'mismatch', b} end
    rotated = cjson.encode({public_key=h.public_key, key_id=h.key_id, agent_id=id, revoked_at=new.connectedAt, reason='rotated'})
    redis.call('HSETNX', P..'revoked', h.public_key, rotated)
    local chain = {}
    if type(h.rotations) == 'table' then chain = h.rotations end
    table.insert(chain, r)
    while #chain > ${MAX_CHAIN} do table.remove(chain, 1) end
    b = cjson.encode({agent_id=id, public_key=new.publicKey, key_id=new.keyId, bound_at=new.connectedAt, via='rotation', rotations=chain})
    redis.call('HSET', P..'bindings', id, b)
  end
end
local bd = cjson.decode(b)
if type(bd.rotations) == 'table' and #bd.rotations > 0 then
  rec = '{"rotations":'..cjson.encode(bd.rotations)..','..string.sub(rec, 2)
end
local cur = redis.call('HGET', P..'agents', id)
if cur then
  local h = cjson.decode(cur)
  redis.call('SREM', P..'mesh:'..h.mesh, id)
  redis.call('SREM', P..'inst:'..h.instanceId, id)
  if h.sessionId == new.sessionId then cur = false end
end
-- A cluster-wide registration order: peers lists show only earlier registrations, so of two
-- agents registering at once on two instances exactly one offers (CONTRACT §1.5).
rec = '{"seq":'..redis.call('INCR', P..'seq')..','..string.sub(rec, 2)
redis.call('HSET', P..'agents', id, rec)
redis.call('SADD', P..'mesh:'..new.mesh, id)
redis.call('SADD', P..'inst:'..new.instanceId, id)
return {'ok', cur, b, rotated}
end
local P, out = ARGV[1], {}
for i = 2, #ARGV, ${CLAIM_ARGS} do
  out[#out + 1] = claim(P, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
end
return out
`;

// An operator binds an id to a key (not revoked); the previous key is revoked. Returns the holder of
// the id so the caller can disconnect a registration under the old key.
const REBIND = `
local P, id, key, keyId, at, seedB = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local rv = redis.call('HGET', P..'revoked', key)
if rv then return {'revoked', rv} end
if seedB ~= '' then redis.call('HSETNX', P..'bindings', id, seedB) end
local prev = redis.call('HGET', P..'bindings', id)
local holder = redis.call('HGET', P..'agents', id)
if prev and cjson.decode(prev).public_key == key then return {'same', prev, holder} end
local b = cjson.encode({agent_id=id, public_key=key, key_id=keyId, bound_at=at, via='rebind'})
redis.call('HSET', P..'bindings', id, b)
local revoked = false
if prev then
  local h = cjson.decode(prev)
  revoked = cjson.encode({public_key=h.public_key, key_id=h.key_id, agent_id=id, revoked_at=at, reason='rebound'})
  redis.call('HSETNX', P..'revoked', h.public_key, revoked)
end
return {'rebound', b, prev, revoked, holder}
`;

const RELEASE = `
local P, id, sid = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('HGET', P..'agents', id)
if not cur then return 0 end
local h = cjson.decode(cur)
if h.sessionId ~= sid then return 0 end
redis.call('HDEL', P..'agents', id)
redis.call('SREM', P..'mesh:'..h.mesh, id)
redis.call('SREM', P..'inst:'..h.instanceId, id)
return 1
`;

const REPORT = `
local P, a, b, r = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local f = a..'\\0'..b
local old = redis.call('HGET', P..'reports', f)
redis.call('HSET', P..'reports', f, r)
redis.call('SADD', P..'rep:'..a, f)
redis.call('SADD', P..'rep:'..b, f)
return old
`;

const FORGET = `
local P, id = ARGV[1], ARGV[2]
local out = {}
for _, f in ipairs(redis.call('SMEMBERS', P..'rep:'..id)) do
  local r = redis.call('HGET', P..'reports', f)
  if r then
    table.insert(out, r)
    redis.call('HDEL', P..'reports', f)
    local d = cjson.decode(r)
    local other = d.agent_id == id and d.peer_id or d.agent_id
    redis.call('SREM', P..'rep:'..other, f)
  end
end
redis.call('DEL', P..'rep:'..id)
return out
`;

// Meshes' members in one round trip (registration lists its mesh every time): one list per mesh
// named in ARGV[2..], in order.
const MESH = `
local P, all = ARGV[1], {}
for i = 2, #ARGV do
  local out = {}
  for _, id in ipairs(redis.call('SMEMBERS', P..'mesh:'..ARGV[i])) do
    local r = redis.call('HGET', P..'agents', id)
    if r then table.insert(out, r) end
  end
  all[#all + 1] = out
end
return all
`;

// Removes the registrations of an instance whose liveness key has expired (or, with force, of the
// caller itself on shutdown). Atomic, so of several instances reaping the same one, one gets the
// records and announces the departures.
const REAP = `
local P, inst, force = ARGV[1], ARGV[2], ARGV[3]
if force ~= '1' and redis.call('EXISTS', P..'alive:'..inst) == 1 then return {} end
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', P..'inst:'..inst)) do
  local cur = redis.call('HGET', P..'agents', id)
  if cur then
    local h = cjson.decode(cur)
    if h.instanceId == inst then
      redis.call('HDEL', P..'agents', id)
      redis.call('SREM', P..'mesh:'..h.mesh, id)
      table.insert(out, cur)
    end
  end
end
redis.call('DEL', P..'inst:'..inst)
redis.call('SREM', P..'instances', inst)
return out
`;

type Script = (...args: string[]) => Promise<unknown>;

type ClaimReply = [string, string | null, string | null, string | null];

export class RedisRegistry implements MeshRegistry {
  private readonly scripts: Record<
    'claim' | 'release' | 'report' | 'forget' | 'reap' | 'mesh' | 'rebind',
    Script
  >;
  /**
   * This instance's copy of the bindings and revocations it has seen (the state directory's
   * identities file): it seeds a Redis that lost them, and every answer from Redis updates it.
   */
  mirror: IdentityFile | undefined;
  private readonly claims: TickBatch<string[], ClaimReply>;
  private readonly meshes: TickBatch<string, string[]>;

  constructor(
    readonly redis: Redis,
    readonly prefix = 'ifmesh:',
  ) {
    const bind = (name: string, lua: string): Script => {
      const command = `ifmesh_${name}`;
      if (!(command in redis)) redis.defineCommand(command, { numberOfKeys: 0, lua });
      const fn = (redis as unknown as Record<string, (...a: string[]) => Promise<unknown>>)[command]!;
      return (...args) => this.guard(fn.call(redis, this.prefix, ...args));
    };
    this.scripts = {
      // v2: the claim now binds keys; a client that defined the old script keeps it under the old name.
      // v3: claims in batches; a client that defined an older script keeps it under its old name.
      claim: bind('claim_v3', CLAIM),
      release: bind('release', RELEASE),
      report: bind('report', REPORT),
      forget: bind('forget', FORGET),
      reap: bind('reap', REAP),
      mesh: bind('mesh', MESH),
      rebind: bind('rebind', REBIND),
    };
    this.claims = new TickBatch(
      async (claims) => (await this.scripts.claim(...claims.flat())) as ClaimReply[],
    );
    this.meshes = new TickBatch(async (names) => (await this.scripts.mesh(...names)) as string[][]);
  }

  private async guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      throw new RegistryUnavailableError(err);
    }
  }

  key(name: string): string {
    return `${this.prefix}${name}`;
  }

  async claim(rec: AgentRecord, opts: ClaimOptions = {}): Promise<ClaimResult> {
    const { seq: _, rotations: _r, ...fields } = rec;
    const seedB = this.mirror?.binding(rec.agentId);
    const seedR = this.mirror?.revocation(rec.publicKey);
    // CLAIM_ARGS of them, in the order the script reads them.
    const args = [
      rec.agentId,
      JSON.stringify(fields),
      opts.via ?? 'first_use',
      opts.rotation ? JSON.stringify(opts.rotation) : '',
      seedB ? JSON.stringify(seedB) : '',
      seedR ? JSON.stringify(seedR) : '',
    ];
    const [status, other, bound, rotated] = await this.claims.add(args);
    if (status === 'revoked') {
      const revocation = JSON.parse(other!) as Revocation;
      this.remember(undefined, revocation);
      return { status: 'taken', reason: 'key_revoked', revocation };
    }
    const binding = parseBinding(status === 'mismatch' ? other! : bound!);
    if (status === 'mismatch') {
      this.remember(binding);
      return { status: 'taken', reason: 'id_key_mismatch', binding };
    }
    const revocation = rotated ? (JSON.parse(rotated) as Revocation) : undefined;
    this.remember(binding, revocation);
    return {
      status: 'ok',
      replaced: other ? (JSON.parse(other) as AgentRecord) : undefined,
      binding,
      ...(revocation ? { rotated: revocation } : {}),
    };
  }

  /** Keeps the local mirror in step with what Redis answered. */
  private remember(binding?: KeyBinding, revocation?: Revocation): void {
    const m = this.mirror;
    if (!m) return;
    const known = binding ? m.binding(binding.agent_id) : undefined;
    const fresh = binding && known?.public_key !== binding.public_key;
    const dead = revocation && !m.revocation(revocation.public_key);
    if (!fresh && !dead) return;
    m.commit([
      ...(dead ? [{ op: 'revoke' as const, revocation }] : []),
      // As Redis has it: a mirrored binding replaces what the mirror held.
      ...(fresh ? [{ op: 'bind' as const, binding, replace: true }] : []),
    ]);
  }

  async binding(agentId: string): Promise<KeyBinding | undefined> {
    const raw = await this.guard(this.redis.hget(this.key('bindings'), agentId));
    return raw ? parseBinding(raw) : this.mirror?.binding(agentId);
  }

  async identities(): Promise<{ bindings: KeyBinding[]; revoked: Revocation[] }> {
    const [b, r] = await this.guard(
      Promise.all([this.redis.hvals(this.key('bindings')), this.redis.hvals(this.key('revoked'))]),
    );
    return { bindings: b.map(parseBinding), revoked: r.map((x) => JSON.parse(x) as Revocation) };
  }

  async rebind(agentId: string, publicKey: string, at: string): Promise<RebindResult> {
    const seedB = this.mirror?.binding(agentId);
    const [status, a, b, c, d] = (await this.scripts.rebind(
      agentId,
      publicKey,
      keyIdOf(publicKey),
      at,
      seedB ? JSON.stringify(seedB) : '',
    )) as [string, string, string | null, string | null, string | null];
    if (status === 'revoked') {
      const revocation = JSON.parse(a) as Revocation;
      this.remember(undefined, revocation);
      return { status: 'revoked', revocation };
    }
    const binding = parseBinding(a);
    if (status === 'same') {
      const holder = b ? (JSON.parse(b) as AgentRecord) : undefined;
      this.remember(binding);
      return {
        status: 'rebound',
        binding,
        previous: binding,
        revoked: undefined,
        holder: holder && holder.publicKey !== publicKey ? holder : undefined,
      };
    }
    const revoked = c ? (JSON.parse(c) as Revocation) : undefined;
    this.remember(binding, revoked);
    return {
      status: 'rebound',
      binding,
      previous: b ? parseBinding(b) : undefined,
      revoked,
      holder: d ? (JSON.parse(d) as AgentRecord) : undefined,
    };
  }

  async release(agentId: string, sessionId: string): Promise<boolean> {
    return (await this.scripts.release(agentId, sessionId)) === 1;
  }

  async get(agentId: string): Promise<AgentRecord | undefined> {
    const raw = await this.guard(this.redis.hget(this.key('agents'), agentId));
    return raw ? (JSON.parse(raw) as AgentRecord) : undefined;
  }

  async list(mesh?: string): Promise<AgentRecord[]> {
    if (mesh === undefined) {
      const all = await this.guard(this.redis.hvals(this.key('agents')));
      return all.map((r) => JSON.parse(r) as AgentRecord);
    }
    const raw = await this.meshes.add(mesh);
    return raw.map((r) => JSON.parse(r) as AgentRecord);
  }

  async count(): Promise<number> {
    return this.guard(this.redis.hlen(this.key('agents')));
  }

  async report(r: ConnectionReport): Promise<ConnectionReport | undefined> {
    const old = (await this.scripts.report(r.agent_id, r.peer_id, JSON.stringify(r))) as string | null;
    return old ? (JSON.parse(old) as ConnectionReport) : undefined;
  }

  async connections(): Promise<ConnectionReport[]> {
    const all = await this.guard(this.redis.hvals(this.key('reports')));
    return all.map((r) => JSON.parse(r) as ConnectionReport);
  }

  async forget(agentId: string): Promise<ConnectionReport[]> {
    const gone = (await this.scripts.forget(agentId)) as string[];
    return gone.map((r) => JSON.parse(r) as ConnectionReport);
  }

  /** Ids an instance holds according to the registry. */
  async heldBy(instanceId: string): Promise<string[]> {
    return this.guard(this.redis.smembers(this.key(`inst:${instanceId}`)));
  }

  /** Drops the registrations of `instanceId` if its liveness key is gone (or `force`); returns them. */
  async reap(instanceId: string, force = false): Promise<AgentRecord[]> {
    const out = (await this.scripts.reap(instanceId, force ? '1' : '0')) as string[];
    return out.map((r) => JSON.parse(r) as AgentRecord);
  }
}

/** cjson encodes an empty chain as {}; a binding read back always has an array or none. */
function parseBinding(raw: string): KeyBinding {
  const b = JSON.parse(raw) as KeyBinding;
  if (b.rotations !== undefined && !Array.isArray(b.rotations)) delete b.rotations;
  return b;
}
