// `ifmesh failover turn` (scenario A) against real coturn: two relay-only werift agents meet through
// coturn 1, which is then killed; the failover pushes TURN_SERVERS with coturn 2 in its place
// (/admin/reload-config), asks the relayed peers to reconnect (/admin/reconnect-turn-peers), and
// waits until the witness sees them on coturn 2, then validates the recovery.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { WitnessClient } from '../../src/clients/witness.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { statePaths } from '../../src/state/state-dir.js';
import { run, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { ADMIN, getJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

let sig: RunningSignaling;
let witness: RunningWitness;
let dir: { dir: string; cleanup: () => void };
const turns: RunningTurnserver[] = [];
const agents: MeshAgent[] = [];
const clients: WitnessClient[] = [];

beforeAll(async () => {
  witness = await startWitness();
  sig = await startSignaling({ instanceId: 'sig-a' });
  dir = tempDir();
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(clients.map((c) => c.close(2_000)));
  await sig?.stop();
  await witness?.stop();
  await Promise.all(turns.map((t) => t.stop()));
  dir?.cleanup();
});

function relayAgent(id: string, turn: RunningTurnserver): MeshAgent {
  const events = new WitnessClient({
    url: witness.url,
    apiKey: API_KEY,
    producer: id,
    spoolDir: statePaths(dir.dir).spool,
  });
  clients.push(events);
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [{ urls: turn.url, username: 'ifmesh', credential: 'test-pass' }],
    iceTransportPolicy: 'relay',
    loopbackOnly: true,
    events,
  });
  agents.push(a);
  a.start();
  return a;
}

describe('failover turn (scenario A)', () => {
  it('moves relay-only peers off a killed coturn onto the replacement, confirmed by the witness', async () => {
    const t1 = await startCoturn();
    const t2 = await startCoturn();
    turns.push(t1, t2);
    const a = relayAgent('ta-1', t1);
    await waitFor(() => a.signalingUrl !== undefined, 'ta-1 to register');
    const b = relayAgent('ta-2', t1);
    await b.waitForPeers(['ta-1'], 20_000);
    expect(b.links.get('ta-1')!.turnServer).toBe(t1.url);
    await waitFor(
      async () =>
        (await getJson(`${sig.http}/connections`)).json.connections.some(
          (c: { candidate_type: string }) => c.candidate_type === 'relay',
        ),
      'a relay connection reported to signaling',
    );

    // The fault: coturn 1 dies.
    process.kill(t1.pid, 'SIGKILL');

    const env = {
      SIGNALING_ADMIN_TOKEN: ADMIN,
      IF_WITNESS_ENDPOINT: witness.url,
      IF_WITNESS_API_KEY: API_KEY,
      IFMESH_STATE_DIR: dir.dir,
    };
    const args = ['failover', 'turn', '--signaling', sig.url, '--failed', t1.url, '--replacement', t2.url];
    const dry = await run([...args, '--id', 'fo-a-dry', '--dry-run', '--json'], { cwd: dir.dir, env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).plan.turn).toMatchObject({ failed: t1.url, replacement: t2.url });
    expect(sig.events.filter((e) => e.event === 'turn_servers_reloaded')).toEqual([]);

    const r = await run(
      [...args, '--id', 'fo-a-1', '--loopback', '--messages', '5', '--timeout', '60s', '--json'],
      {
        cwd: dir.dir,
        env,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    // One end of the relayed pair reconnects (both at once would offer to each other).
    expect(doc.report.turn.reconnected).toHaveLength(1);
    const [mover] = doc.report.turn.reconnected as string[];
    expect(['ta-1', 'ta-2']).toContain(mover);
    expect(doc.report.turn.on_replacement).toContain(mover);
    expect(doc.validation.passed, JSON.stringify(doc.validation.checks)).toBe(true);
    // The pair really relays through coturn 2 now, and a signed ping crosses it.
    const [agent, peer] = mover === 'ta-1' ? [a, 'ta-2'] : [b, 'ta-1'];
    await waitFor(() => agent.links.get(peer)?.turnServer === t2.url, `${mover} relayed through coturn 2`);
    expect((await agent.links.get(peer)!.stats()).candidateType).toBe('relay');
    expect(Number.isFinite(await agent.links.get(peer)!.ping())).toBe(true);
    const q = async (query: Record<string, unknown>) =>
      (await post(`${witness.url}/api/query`, { query })).json.results as Record<string, any>[];
    expect((await q({ failover_id: 'fo-a-1' })).map((e) => e.event)).toEqual(
      expect.arrayContaining([
        'failover_initiated',
        'turn_server_failover',
        'turn_server_failover_complete',
        'failover_recovery_validated',
      ]),
    );
    expect(await q({ event: 'turn_connection_detected', 'metadata.turn_server': t2.url })).not.toEqual([]);
  }, 120_000);
});
