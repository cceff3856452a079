// One mesh across three `ifmesh signaling serve --cluster` processes behind real nginx, sharing a
// real redis-server; werift agents spread over the instances. Then kill -9 of one instance.

import { describe, expect, it } from 'vitest';
import type { MeshAgent } from '../../src/agent/agent.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { requireBinary } from '../helpers/binaries.js';
import { until } from '../helpers/cluster.js';
import { startCoturn } from '../helpers/coturn.js';
import { fullMesh, meshAgent, type RunningNginx, startNginx } from '../helpers/mesh.js';
import { type Service, startSignalingProcess } from '../helpers/processes.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { ADMIN, connect, getJson, postJson, type TestClient } from '../helpers/signaling.js';

const TTL_MS = 6_000;

const port = (s: Service) => Number(new URL(s.url).port);
const httpOf = (s: Service) => s.url.replace('ws://', 'http://');
type AgentRow = { agent_id: string; instance_id: string };
const listAgents = async (base: string): Promise<AgentRow[]> =>
  ((await getJson(`${base}/agents`)).json.agents as AgentRow[]).sort((a, b) =>
    a.agent_id.localeCompare(b.agent_id),
  );

/** Each test's own cluster: Redis, coturn (STUN), three instances and nginx, stopped by stop(). */
async function startCluster() {
  requireBinary('nginx', 'nginx');
  const c = {
    redis: undefined as TestRedis | undefined,
    turn: undefined as RunningTurnserver | undefined,
    nginx: undefined as RunningNginx | undefined,
    sig: [] as Service[],
    agents: [] as MeshAgent[],
    observers: [] as TestClient[],
    async stop() {
      for (const o of c.observers) o.ws.terminate();
      await Promise.all(c.agents.map((a) => a.stop()));
      await Promise.all(c.sig.map((s) => s.stop()));
      await c.nginx?.stop();
      await c.turn?.stop();
      await c.redis?.cleanup();
    },
  };
  try {
    c.redis = await startRedis();
    c.turn = await startCoturn();
    for (const n of [1, 2, 3])
      c.sig.push(
        await startSignalingProcess(
          ['--cluster', c.redis.url, '--cluster-ttl', String(TTL_MS), '--instance-id', `sig-${n}`],
          { SIGNALING_ADMIN_TOKEN: ADMIN },
        ),
      );
    c.nginx = await startNginx(c.sig.map(port));
  } catch (err) {
    await c.stop();
    throw err;
  }
  return { ...c, redis: c.redis, turn: c.turn, nginx: c.nginx, stop: () => c.stop() };
}

/** `count` agents spread over the instances, each listing the others after its own (failover order). */
function spread(c: Awaited<ReturnType<typeof startCluster>>, count: number): void {
  for (let i = 0; i < count; i++) {
    const order = [0, 1, 2].map((k) => c.sig[(i + k) % 3]!.url);
    c.agents.push(meshAgent(`cl-${i}`, order, c.turn.stunUrl));
  }
}

/** One silent observer per instance, registered after the mesh so nobody offers to them. */
async function observe(c: Awaited<ReturnType<typeof startCluster>>): Promise<void> {
  for (const s of c.sig) {
    const o = await connect(s.url);
    c.observers.push(o);
    await o.register(`obs-${c.observers.length}`);
  }
}

describe('one mesh across signaling instances (Redis)', () => {
  it('forms the full mesh across three instances behind nginx; announcements reach every agent; /agents is the same on 20 requests', async () => {
    const c = await startCluster();
    const { redis, nginx, sig, agents, observers } = c;
    try {
      expect(sig.map((s) => s.ready.cluster)).toEqual([redis.url, redis.url, redis.url].map((u) => `${u}`));
      // Six agents, two per instance.
      spread(c, 6);
      await fullMesh(agents);
      const rows = await listAgents(nginx.http);
      expect(rows.map((r) => r.agent_id)).toEqual(agents.map((a) => a.id));
      expect(new Set(rows.map((r) => r.instance_id))).toEqual(new Set(['sig-1', 'sig-2', 'sig-3']));
      // Offers, answers and candidates crossed instances: cl-0 (sig-1) has a signed channel to cl-1 (sig-2).
      expect(rows.find((r) => r.agent_id === 'cl-0')!.instance_id).not.toBe(
        rows.find((r) => r.agent_id === 'cl-1')!.instance_id,
      );
      for (const a of agents)
        expect(await a.links.get(agents[(agents.indexOf(a) + 1) % 6]!.id)!.ping()).toBeGreaterThanOrEqual(0);

      // Admin calls through the front door reach the agents of every instance.
      const bw = await postJson(`${nginx.http}/config/bandwidth`, {
        enableBandwidthAdaptation: true,
        maxBitrateMbps: 5,
      });
      expect(bw.json).toMatchObject({ status: 'ok', pushed: 6 });
      await until('every agent got the bandwidth push', () =>
        agents.every((a) => a.bandwidth?.maxBitrateMbps === 5),
      );
      const oldKeys = agents.map((a) => Buffer.from(a.publicKey).toString('base64url'));
      const rot = await postJson(
        `${nginx.http}/admin/rotate-keys`,
        { rotation_reason: 'cluster test' },
        ADMIN,
      );
      expect(rot.json).toMatchObject({ status: 'started', total: 6 });
      const done = await until(
        'rotation completed by all six, counted from any instance',
        async () => {
          const st = (await getJson(`${httpOf(sig[2]!)}/admin/key-rotation-status`)).json;
          return st.rotation_id === rot.json.rotation_id && st.status === 'completed' ? st : undefined;
        },
        20_000,
      );
      expect(done).toMatchObject({ completed: 6, total: 6, pending: [] });
      // Every instance's registry holds each agent's new key.
      const keyOf = (a: MeshAgent) => Buffer.from(a.publicKey).toString('base64url');
      await until('the new keys registered, seen from sig-1', async () => {
        const rows = (await listAgents(httpOf(sig[0]!))) as (AgentRow & { public_key: string })[];
        return agents.every((a) => rows.find((r) => r.agent_id === a.id)?.public_key === keyOf(a));
      });
      expect(agents.map(keyOf).some((k, i) => k === oldKeys[i])).toBe(false);
      await fullMesh(agents);
      // Signed under the new keys, verified by peers on other instances that learned them (agent-joined).
      for (const a of agents)
        expect(await a.links.get(agents[(agents.indexOf(a) + 2) % 6]!.id)!.ping()).toBeGreaterThanOrEqual(0);

      await observe(c);
      // An agent leaving is announced on every instance.
      const leaving = agents.pop()!;
      await leaving.stop();
      for (const o of observers)
        expect(await o.next('agent-left', 10_000)).toMatchObject({ agent_id: leaving.id });

      const expected = [...agents.map((a) => a.id), 'obs-1', 'obs-2', 'obs-3'].sort();
      for (let i = 0; i < 20; i++)
        expect((await listAgents(nginx.http)).map((r) => r.agent_id)).toEqual(expected);
    } finally {
      await c.stop();
    }
  }, 120_000);

  it('kill -9 of an instance: its agents re-register elsewhere, its dead sockets leave within the TTL, no ghosts', async () => {
    const c = await startCluster();
    const { turn, nginx, sig, agents, observers } = c;
    try {
      spread(c, 5);
      await fullMesh(agents);
      await observe(c);
      const victim = sig[0]!;
      const before = await listAgents(nginx.http);
      const held = before.filter((r) => r.instance_id === 'sig-1').map((r) => r.agent_id);
      expect(held).toContain('obs-1');
      victim.kill('SIGKILL');
      await victim.exited;
      // obs-1 does not reconnect: it is reaped once sig-1's liveness key expires, and the agents on
      // the other instances hear agent-left.
      for (const o of observers.slice(1))
        expect(await o.next('agent-left', TTL_MS + 3_000)).toMatchObject({ agent_id: 'obs-1' });
      const after = await until(
        'every agent registered on a live instance, nothing left on sig-1',
        async () => {
          const rows = await listAgents(httpOf(sig[1]!));
          const ids = rows.map((r) => r.agent_id);
          return rows.every((r) => r.instance_id !== 'sig-1') && agents.every((a) => ids.includes(a.id))
            ? rows
            : undefined;
        },
        TTL_MS + 3_000,
      );
      expect(after.map((r) => r.agent_id)).toEqual([...agents.map((a) => a.id), 'obs-2', 'obs-3'].sort());
      await fullMesh(agents);
      // The mesh negotiates again across the survivors: a fresh agent reaches every one of them.
      const late = meshAgent('cl-late', [sig[2]!.url, sig[1]!.url], turn.stunUrl);
      agents.push(late);
      await fullMesh(agents);
      const ids = (await listAgents(nginx.http)).map((r) => r.agent_id);
      for (let i = 0; i < 20; i++) expect((await listAgents(nginx.http)).map((r) => r.agent_id)).toEqual(ids);
      expect(ids).not.toContain('obs-1');
    } finally {
      await c.stop();
    }
  }, 120_000);
});
