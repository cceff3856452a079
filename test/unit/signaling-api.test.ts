// The signaling API's shared schemas, the merges that count each agent and report once, and the
// cluster grouping: pure functions, no sockets.
import { describe, expect, it } from 'vitest';
import { groupByCluster, httpUrlOf, wsUrlOf } from '../../src/clients/signaling.js';
import { mergeAgents, mergeConnections } from '../../src/ops/fleet-views.js';
import {
  type AgentInfo,
  agentsResponseSchema,
  type ConnectionInfo,
  connectionsResponseSchema,
  type Health,
  healthSchema,
  keyRotationStatusSchema,
} from '../../src/protocol/signaling-api.js';
import { clusterIdOf } from '../../src/services/signaling/redis-cluster.js';

const agent = (id: string, o: Partial<AgentInfo> = {}): AgentInfo => ({
  agent_id: id,
  public_key: 'cGs',
  key_id: 'k',
  connected_at: '2026-11-30T19:00:00.000Z',
  instance_id: 'sig-1',
  mesh: 'default',
  host: '127.0.0.1',
  metadata: {},
  ...o,
});
const report = (from: string, to: string, o: Partial<ConnectionInfo> = {}): ConnectionInfo => ({
  agent_id: from,
  peer_id: to,
  state: 'connected',
  candidate_type: 'host',
  rtt_ms: 1.5,
  updated_at: '2026-11-30T19:00:00.000Z',
  ...o,
});

describe('signaling API schemas', () => {
  it('accept what the server sends, dropping fields they do not know', () => {
    const up = healthSchema.parse({
      status: 'ok',
      instance_id: 'sig-1',
      cluster: 'redis',
      cluster_id: 'redis-0123456789ab',
      agents: 2,
      uptime_s: 5,
      rotation: null,
      future_field: true,
    });
    expect(up).toEqual({
      status: 'ok',
      instance_id: 'sig-1',
      cluster: 'redis',
      cluster_id: 'redis-0123456789ab',
      agents: 2,
      uptime_s: 5,
      rotation: null,
    });
    expect(
      healthSchema.parse({ status: 'down', reason: 'draining', instance_id: 'x', agents: 0 }).status,
    ).toBe('down');
    expect(agentsResponseSchema.parse({ agents: [agent('a')] }).agents[0]!.agent_id).toBe('a');
    expect(
      keyRotationStatusSchema.parse({ status: 'idle', completed: 0, total: 0, rotation_id: null }),
    ).toEqual({
      status: 'idle',
      completed: 0,
      total: 0,
      rotation_id: null,
    });
  });

  it('refuse a malformed answer, naming the field', () => {
    const bad = agentsResponseSchema.safeParse({ agents: [{ ...agent('a'), agent_id: 7 }] });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual(['agents', 0, 'agent_id']);
    expect(healthSchema.safeParse({ status: 'fine', instance_id: 'x', agents: 0 }).success).toBe(false);
    const state = connectionsResponseSchema.safeParse({
      connections: [{ ...report('a', 'b'), state: 'up' }],
    });
    expect(state.success).toBe(false);
    expect(state.error!.issues[0]!.path).toEqual(['connections', 0, 'state']);
    expect(connectionsResponseSchema.safeParse({ agents: [] }).success).toBe(false);
  });
});

describe('mergeAgents and mergeConnections', () => {
  it('two instances sharing a registry list the same agents: each is counted once', () => {
    const listed = { agents: [agent('a1'), agent('a2', { instance_id: 'sig-2' }), agent('a3')] };
    const merged = mergeAgents([listed, structuredClone(listed)]);
    expect(merged.map((a) => a.agent_id).sort()).toEqual(['a1', 'a2', 'a3']);
    const reports = {
      connections: [report('a1', 'a2'), report('a2', 'a1'), report('a1', 'a3'), report('a3', 'a1')],
    };
    expect(mergeConnections([reports, structuredClone(reports)])).toHaveLength(4);
  });

  it('two instances with disjoint agents: the counts add up', () => {
    const merged = mergeAgents([{ agents: [agent('a1'), agent('a2')] }, { agents: [agent('b1')] }]);
    expect(merged.map((a) => a.agent_id).sort()).toEqual(['a1', 'a2', 'b1']);
    const c = mergeConnections([
      { connections: [report('a1', 'a2'), report('a2', 'a1')] },
      { connections: [report('b1', 'b2')] },
    ]);
    expect(c).toHaveLength(3);
  });

  it('the same id in two meshes is two agents; the latest registration and report win', () => {
    const merged = mergeAgents([
      { agents: [agent('a', { mesh: 'x' }), agent('a', { mesh: 'y' })] },
      { agents: [agent('a', { mesh: 'x', instance_id: 'sig-2', connected_at: '2026-11-30T19:05:00.000Z' })] },
    ]);
    expect(merged).toHaveLength(2);
    expect(merged.find((a) => a.mesh === 'x')!.instance_id).toBe('sig-2');
    const [only] = mergeConnections([
      { connections: [report('a', 'b', { state: 'failed', updated_at: '2026-11-30T19:10:00.000Z' })] },
      { connections: [report('a', 'b', { state: 'connected', updated_at: '2026-11-30T19:00:00.000Z' })] },
    ]);
    expect(only!.state).toBe('failed');
  });
});

describe('cluster identity', () => {
  const health = (cluster_id?: string): Health => ({
    status: 'ok',
    instance_id: 'i',
    cluster: cluster_id ? 'redis' : 'standalone',
    ...(cluster_id ? { cluster_id } : {}),
    agents: 0,
    uptime_s: 1,
    rotation: null,
  });

  it('groups instances by cluster_id; one without a cluster (or without an answer) is its own group', () => {
    const groups = groupByCluster([
      { url: 'http://a', health: health('redis-1') },
      { url: 'http://s', health: health() },
      { url: 'http://b', health: health('redis-1') },
      { url: 'http://dead', health: null },
      { url: 'http://c', health: health('redis-2') },
    ]);
    expect(groups.map((g) => [g.cluster_id, g.members.map((m) => m.url)])).toEqual([
      ['redis-1', ['http://a', 'http://b']],
      [null, ['http://s']],
      [null, ['http://dead']],
      ['redis-2', ['http://c']],
    ]);
  });

  it('cluster_id: stable, short, blind to credentials, different per prefix and per server', () => {
    const id = clusterIdOf('redis://127.0.0.1:6390', 'ifmesh:');
    expect(id).toMatch(/^redis-[0-9a-f]{12}$/);
    expect(clusterIdOf('redis://:secret@127.0.0.1:6390/0', 'ifmesh:')).toBe(id);
    expect(clusterIdOf('redis://user:other@127.0.0.1:6390', 'ifmesh:')).toBe(id);
    expect(clusterIdOf('redis://127.0.0.1:6390', 'other:')).not.toBe(id);
    expect(clusterIdOf('redis://127.0.0.1:6391', 'ifmesh:')).not.toBe(id);
    expect(clusterIdOf('redis://127.0.0.1:6390/2', 'ifmesh:')).not.toBe(id);
  });

  it('ws(s):// and http(s):// name the same server', () => {
    expect(httpUrlOf('wss://sig.example:8443/')).toBe('https://sig.example:8443');
    expect(httpUrlOf('ws://127.0.0.1:1')).toBe('http://127.0.0.1:1');
    expect(httpUrlOf('http://127.0.0.1:1')).toBe('http://127.0.0.1:1');
    expect(wsUrlOf('https://sig.example:8443')).toBe('wss://sig.example:8443');
  });
});
