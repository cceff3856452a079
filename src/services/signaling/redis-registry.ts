// The MeshRegistry over Redis, shared by every instance of a cluster. Each change that must be
// atomic across instances (claim, release, report, forget, reaping a dead instance) is one Lua
// script, so two instances racing for one agent id can never both win. Standalone Redis (or
// Sentinel) only: the scripts touch keys they compute, which Redis Cluster does not allow.
//
// Layout under `prefix`:  agents (hash id -> record JSON), mesh:<m> (set of ids),
// inst:<instance> (set of ids it holds), reports (hash "a\0b" -> report JSON),
// rep:<id> (set of report fields by or about id).
import type { Redis } from 'ioredis';
import type { AgentRecord, ClaimResult, ConnectionReport, MeshRegistry } from './registry.js';

/** The cluster store could not be reached; callers answer 503 / close with "try again later". */
export class RegistryUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`cluster registry unreachable: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'RegistryUnavailableError';
  }
}

const CLAIM = `
local P, id, rec = ARGV[1], ARGV[2], ARGV[3]
local new = cjson.decode(rec)
local cur = redis.call('HGET', P..'agents', id)
if cur then
  local h = cjson.decode(cur)
  if h.publicKey ~= new.publicKey and h.sessionId ~= new.sessionId then return {'taken', cur} end
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
return {'ok', cur}
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

// A mesh's members in one round trip (registration lists them every time).
const MESH = `
local P, mesh = ARGV[1], ARGV[2]
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', P..'mesh:'..mesh)) do
  local r = redis.call('HGET', P..'agents', id)
  if r then table.insert(out, r) end
end
return out
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

export class RedisRegistry implements MeshRegistry {
  private readonly scripts: Record<'claim' | 'release' | 'report' | 'forget' | 'reap' | 'mesh', Script>;

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
      claim: bind('claim', CLAIM),
      release: bind('release', RELEASE),
      report: bind('report', REPORT),
      forget: bind('forget', FORGET),
      reap: bind('reap', REAP),
      mesh: bind('mesh', MESH),
    };
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

  async claim(rec: AgentRecord): Promise<ClaimResult> {
    const { seq: _, ...fields } = rec;
    const [status, other] = (await this.scripts.claim(rec.agentId, JSON.stringify(fields))) as [
      string,
      string | null,
    ];
    if (status === 'taken') return { status: 'taken', holder: JSON.parse(other!) as AgentRecord };
    return { status: 'ok', replaced: other ? (JSON.parse(other) as AgentRecord) : undefined };
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
    const raw = (await this.scripts.mesh(mesh)) as string[];
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
