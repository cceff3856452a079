// Without Redis the instances share nothing, so ifmesh runs one active instance and the others as
// hot standbys (nginx `backup`, listed after the active one in agents' signaling URLs): the mesh
// never splits. Real nginx, two `ifmesh signaling serve` processes, werift agents.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MeshAgent } from '../../src/agent/agent.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { requireBinary } from '../helpers/binaries.js';
import { until } from '../helpers/cluster.js';
import { startCoturn } from '../helpers/coturn.js';
import { fullMesh, meshAgent, type RunningNginx, startNginx } from '../helpers/mesh.js';
import { type Service, startSignalingProcess } from '../helpers/processes.js';
import { getJson } from '../helpers/signaling.js';

const FAILOVER_MS = 5_000; // CONTRACT §5: signaling failover timeout
let turn: RunningTurnserver;
let nginx: RunningNginx;
let active: Service;
let standby: Service;
const agents: MeshAgent[] = [];

const port = (s: Service) => Number(new URL(s.url).port);
type AgentRow = { agent_id: string; instance_id: string };
const rows = async (base: string): Promise<AgentRow[]> =>
  ((await getJson(`${base}/agents`)).json.agents as AgentRow[]).sort((a, b) =>
    a.agent_id.localeCompare(b.agent_id),
  );

beforeAll(async () => {
  requireBinary('nginx', 'nginx');
  turn = await startCoturn();
  active = await startSignalingProcess(['--instance-id', 'active']);
  standby = await startSignalingProcess(['--instance-id', 'standby']);
  nginx = await startNginx([port(active)], [port(standby)]);
}, 60_000);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all([active, standby].map((s) => s?.stop()));
  await nginx?.stop();
  await turn?.stop();
}, 60_000);

describe('standalone instances as active + hot standby', () => {
  it('never splits: /agents through the front door is the same on 20 requests; killing the active moves every agent to the standby', async () => {
    for (let i = 0; i < 4; i++)
      agents.push(meshAgent(`sb-${i}`, [nginx.url, standby.url], turn.stunUrl, FAILOVER_MS));
    await fullMesh(agents);
    const first = await rows(nginx.http);
    expect(first.map((r) => r.agent_id)).toEqual(agents.map((a) => a.id));
    expect(first.every((r) => r.instance_id === 'active')).toBe(true);
    for (let i = 0; i < 20; i++) expect(await rows(nginx.http)).toEqual(first);

    active.kill('SIGKILL');
    await active.exited;
    const moved = await until(
      'every agent registered on the standby',
      async () => {
        const r = await rows(nginx.http);
        return r.length === agents.length && r.every((x) => x.instance_id === 'standby') ? r : undefined;
      },
      FAILOVER_MS + 2_000,
    );
    expect(moved.map((r) => r.agent_id)).toEqual(agents.map((a) => a.id));
    for (let i = 0; i < 20; i++)
      expect((await rows(nginx.http)).map((r) => r.agent_id)).toEqual(agents.map((a) => a.id));
    // And the mesh keeps negotiating there: a newcomer links with everyone.
    agents.push(meshAgent('sb-late', [nginx.url, standby.url], turn.stunUrl, FAILOVER_MS));
    await fullMesh(agents);
  }, 90_000);
});
