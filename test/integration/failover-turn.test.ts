// `ifmesh failover turn` (scenario A) against real coturn: two relay-only werift agents meet through
// coturn 1, which is then killed; the failover tests coturn 2 with a real Allocate, writes
// TURN_SERVERS with coturn 2 in coturn 1's place to the env file (backup kept: a signaling process
// started from that file afterwards serves coturn 2), pushes it (/admin/reload-config), asks the
// relayed peers to reconnect (/admin/reconnect-turn-peers), and waits until the witness sees them on
// coturn 2, then validates the recovery. A replacement that does not answer, or refuses the
// credentials, is refused before anything changes, with its own exit code. And the local stack's
// usual case: no agent relayed at all (direct on loopback), so there is nothing to move and the
// failover passes, saying so, with one verdict and rounded RTTs in its human output.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { getGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { WitnessClient } from '../../src/clients/witness.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { EXCHANGE_THRESHOLDS } from '../../src/ops/agent/exchange.js';
import { applyFailover, planTurnFailover } from '../../src/ops/failover/scenarios.js';
import { validateRecovery } from '../../src/ops/failover/validate.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { systemExec } from '../../src/util/exec.js';
import { run, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { freePort, startSignalingProcess } from '../helpers/processes.js';
import { writeReleaseRecord } from '../helpers/release-record.js';
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
    spoolDir: openStateDir(dir.dir).spool,
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
    // The configuration the mesh runs from: the file the failover must change, as the guide's sed -i.
    const envFile = path.join(dir.dir, 'webrtc-production.env');
    const original = `# TURN relays\nTURN_SERVERS=${t1.url}\nTURN_USERNAME=ifmesh\nTURN_PASSWORD=test-pass\n`;
    writeFileSync(envFile, original, { mode: 0o600 });
    const args = [
      'failover',
      'turn',
      // The latency check's budget is not what these tests are about (a loaded machine).
      '--max-rtt-p95',
      '10s',
      '--config',
      envFile,
      '--signaling',
      sig.url,
      '--failed',
      t1.url,
      '--replacement',
      t2.url,
    ];
    const dry = await run([...args, '--id', 'fo-a-dry', '--dry-run', '--json'], { cwd: dir.dir, env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).plan.turn).toMatchObject({
      failed: t1.url,
      replacement: t2.url,
      turn_servers: [t2.url],
      probe: true,
      env_file: envFile,
      turn_servers_source: 'file',
    });
    expect(sig.events.filter((e) => e.event === 'turn_servers_reloaded')).toEqual([]);
    expect(readFileSync(envFile, 'utf8')).toBe(original);

    const r = await run(
      [...args, '--id', 'fo-a-1', '--loopback', '--messages', '5', '--timeout', '60s', '--json'],
      {
        cwd: dir.dir,
        env,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    // Steps 1 and 2 of the guide, before any push: the replacement allocated, the file rewritten.
    expect(doc.report.steps.slice(0, 3).map((x: { step: string }) => x.step)).toEqual([
      'test the replacement',
      'persist TURN_SERVERS',
      'reload-config',
    ]);
    expect(doc.report.turn.probe.relayed).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(doc.report.turn.env_file).toMatchObject({ file: envFile, persisted: true });
    const backup = doc.report.turn.env_file.backup as string;
    expect(backup).toMatch(/webrtc-production\.env\.bak-\d{8}T\d{6}Z$/);
    expect(readFileSync(backup, 'utf8')).toBe(original);
    expect(readFileSync(envFile, 'utf8')).toBe(
      original.replace(`TURN_SERVERS=${t1.url}`, `TURN_SERVERS=${t2.url}`),
    );
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    // A restart reads the file: a signaling process started from it serves the replacement.
    const restarted = await startSignalingProcess(['--config', envFile]);
    try {
      expect((await getJson(`${restarted.ready.http_url}/config`)).json.turnServers).toEqual([t2.url]);
    } finally {
      await restarted.stop();
    }
    // One end of the relayed pair reconnects (both at once would offer to each other).
    expect(doc.report.turn.reconnected).toHaveLength(1);
    const [mover] = doc.report.turn.reconnected as string[];
    expect(['ta-1', 'ta-2']).toContain(mover);
    expect(doc.report.turn.on_replacement).toContain(mover);
    expect(doc.validation.passed, JSON.stringify(doc.validation.checks)).toBe(true);
    const recovery = doc.validation.checks.find((k: { name: string }) => k.name === 'recovery_time');
    expect(recovery.data).toMatchObject({ recovery_ms: doc.report.recovery.recovery_ms, target_ms: 300_000 });
    expect(recovery.detail).toMatch(
      /^recovered in .+, target < 5 min \(the guide: 5-30s \(auto\), <5m \(manual\)\)$/,
    );
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
        'failover_service_restored',
        'failover_recovery_validated',
      ]),
    );
    expect(await q({ event: 'turn_connection_detected', 'metadata.turn_server': t2.url })).not.toEqual([]);
  }, 120_000);
});

describe('failover turn (scenario A) with no agent relayed', () => {
  // A signaling instance of its own: the relayed pair above never shows up here.
  let sig2: RunningSignaling;
  let dir2: { dir: string; cleanup: () => void };
  const ctx = {
    clock: systemClock,
    signal: new AbortController().signal,
    dispatcher: getGlobalDispatcher(),
    exec: systemExec,
  };
  beforeAll(async () => {
    sig2 = await startSignaling({ instanceId: 'sig-a2' });
    dir2 = tempDir();
  });
  afterAll(async () => {
    await sig2?.stop();
    dir2?.cleanup();
  });
  const witnessTarget = () => ({ url: witness.url, apiKey: API_KEY, state: openStateDir(dir2.dir) });

  it('passes at once: the report says nothing had to move, and the witness has the completion', async () => {
    const plan = planTurnFailover({
      failoverId: 'fo-a-none',
      signaling: [sig2.url],
      turnServers: ['turn:127.0.0.1:3478'],
      failed: 'turn:127.0.0.1:3478',
      replacement: 'turn:127.0.0.1:3479',
      // Nothing answers on 3479: the op alone, without the guide's step 1.
      probe: false,
    });
    // An hour to wait: the bug waited all of it for a peer that could never come (this test would
    // time out long before), then failed.
    const report = await applyFailover(
      plan,
      { state: openStateDir(dir2.dir), adminToken: ADMIN, witness: witnessTarget(), timeoutMs: 3_600_000 },
      ctx,
    );
    expect(report.ok, JSON.stringify(report.steps)).toBe(true);
    expect(report.turn).toEqual({
      probe: null,
      env_file: { file: null, backup: null, persisted: false },
      pushed: 0,
      reconnected: [],
      on_replacement: [],
      nothing_to_move: true,
    });
    expect(report.steps.at(-1)).toEqual({
      step: 'peers on the replacement',
      ok: true,
      detail: 'no agent was relayed through turn:127.0.0.1:3478: nothing to move',
    });
    const done = (await post(`${witness.url}/api/query`, { query: { failover_id: 'fo-a-none' } })).json
      .results as Record<string, any>[];
    expect(done.find((e) => e.event === 'turn_server_failover_complete')?.metadata).toMatchObject({
      agents: [],
      nothing_to_move: true,
    });
    expect(done.find((e) => e.event === 'failover_completed')?.metadata).toMatchObject({ ok: true });
  });

  it('validation details round RTTs for people; the data keeps full precision', async () => {
    const rtt = { p50: 3.2058670000114944, p95: 4.987654321, max: 5.0001 };
    const v = await validateRecovery(
      {
        failoverId: 'fo-a-rtt',
        scenario: 'A',
        signalingHttp: [sig2.http],
        witness: witnessTarget(),
        exchange: async () => ({
          ok: true,
          agents: 2,
          pairs: 1,
          pings_sent: 5,
          pongs_received: 5,
          delivery_ratio: 1,
          rtt_ms: rtt,
          signature_failures: 0,
          messages_per_second: 123.456,
          mesh_formed_ms: 812,
          thresholds: EXCHANGE_THRESHOLDS,
          failures: [],
        }),
      },
      ctx,
    );
    const latency = v.checks.find((k) => k.name === 'latency')!;
    expect(latency).toMatchObject({ passed: true, data: { rtt_ms: rtt } });
    expect(latency.detail).toBe('RTT p50 3.2 ms, p95 5 ms (at most 100 ms)');
  });

  it('exits 0 through the CLI with direct agents, one success verdict and rounded RTTs', async () => {
    const t1 = await startCoturn();
    const t2 = await startCoturn();
    turns.push(t1, t2);
    const direct = ['td-1', 'td-2'].map((id) => {
      const a = new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: [sig2.url],
        iceServers: [],
        loopbackOnly: true,
      });
      agents.push(a);
      a.start();
      return a;
    });
    await direct[0]!.waitForPeers(['td-2'], 20_000);
    await waitFor(async () => {
      const cs = (await getJson(`${sig2.http}/connections`)).json.connections as {
        state: string;
        candidate_type: string;
      }[];
      return cs.length > 0 && cs.every((c) => c.state === 'connected' && c.candidate_type !== 'relay');
    }, 'direct connections reported to signaling');
    // Releases whose agents were started with TURN_SERVERS naming the failed server (a deploy's
    // --set): a canary from the current one, or a rollback to the older, would bring it back.
    const releases = path.join(dir2.dir, 'releases');
    const release = (id: string, turn: string | undefined) =>
      writeReleaseRecord(
        dir2.dir,
        {
          id,
          agents: ['td-1'],
          agent_specs: [
            {
              agent_id: 'td-1',
              config: '/x/td-1.json',
              signaling: [sig2.url],
              env: { ...(turn ? { TURN_SERVERS: turn } : {}), ICE_TRANSPORT_POLICY: 'all' },
              cwd: '/x',
            },
          ],
        },
        { current: false },
      );
    release('r1', `${t1.url}, ${t2.url}`);
    release('r2', undefined);
    writeFileSync(path.join(releases, 'r3.json'), '{"id": "r3", "ref"');
    const r = await run(
      [
        'failover',
        'turn',
        // The latency check's budget is not what these tests are about (a loaded machine).
        '--max-rtt-p95',
        '10s',
        '--signaling',
        sig2.url,
        '--failed',
        t1.url,
        '--replacement',
        t2.url,
        '--id',
        'fo-a-direct',
        '--loopback',
        '--messages',
        '5',
        '--timeout',
        '5s',
      ],
      {
        cwd: dir2.dir,
        env: {
          SIGNALING_ADMIN_TOKEN: ADMIN,
          IF_WITNESS_ENDPOINT: witness.url,
          IF_WITNESS_API_KEY: API_KEY,
          IFMESH_STATE_DIR: dir2.dir,
          // From the environment, no env file: the replacement is tested, nothing is persisted.
          TURN_SERVERS: t1.url,
          TURN_USERNAME: 'ifmesh',
          TURN_PASSWORD: 'test-pass',
        },
      },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`✓ test the replacement: ${t2.url} allocated a relay`);
    expect(r.stdout).toContain('✓ persist TURN_SERVERS: no env file was loaded');
    expect(r.stdout).toContain('agent specs of release r1 updated (a canary or rollback keeps it)');
    expect(r.stdout).toContain(`release r3 could not be read: a rollback to it may bring ${t1.url} back`);
    const specEnv = (id: string) =>
      JSON.parse(readFileSync(path.join(releases, `${id}.json`), 'utf8')).agent_specs[0].env;
    // The failed server replaced in place, the replacement not listed twice; other keys kept.
    expect(specEnv('r1')).toEqual({ TURN_SERVERS: t2.url, ICE_TRANSPORT_POLICY: 'all' });
    expect(specEnv('r2')).toEqual({ ICE_TRANSPORT_POLICY: 'all' });
    expect(r.stdout).toContain(`no agent was relayed through ${t1.url}: nothing to move`);
    expect(r.stdout).not.toMatch(/FAILED|NOT validated|✗/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(
      '✅ failover fo-a-direct (scenario A) applied, recovery validated',
    );
    expect(r.stdout).toMatch(/RTT p50 \d+(\.\d)? ms, p95 \d+(\.\d)? ms \(at most 10000 ms\)/);
  }, 90_000);
});

describe('failover turn (scenario A) refuses a replacement that does not allocate', () => {
  let sig3: RunningSignaling;
  let dir3: { dir: string; cleanup: () => void };
  let live: RunningTurnserver;
  beforeAll(async () => {
    sig3 = await startSignaling({ instanceId: 'sig-a3' });
    dir3 = tempDir();
    live = await startCoturn();
    turns.push(live);
  });
  afterAll(async () => {
    await sig3?.stop();
    dir3?.cleanup();
  });

  const attempt = async (id: string, replacement: string, password = 'test-pass', extra: string[] = []) => {
    const envFile = path.join(dir3.dir, `${id}.env`);
    const original = `TURN_SERVERS=turn:127.0.0.1:3478\nTURN_USERNAME=ifmesh\nTURN_PASSWORD=${password}\n`;
    writeFileSync(envFile, original, { mode: 0o600 });
    const r = await run(
      [
        'failover',
        'turn',
        // The latency check's budget is not what these tests are about (a loaded machine).
        '--max-rtt-p95',
        '10s',
        '--config',
        envFile,
        '--signaling',
        sig3.url,
        '--failed',
        'turn:127.0.0.1:3478',
        '--replacement',
        replacement,
        '--id',
        id,
        '--json',
        ...extra,
      ],
      {
        cwd: dir3.dir,
        env: {
          SIGNALING_ADMIN_TOKEN: ADMIN,
          IF_WITNESS_ENDPOINT: witness.url,
          IF_WITNESS_API_KEY: API_KEY,
          IFMESH_STATE_DIR: dir3.dir,
        },
      },
    );
    return { r, envFile, original };
  };
  const logged = async (id: string) =>
    (await post(`${witness.url}/api/query`, { query: { failover_id: id } })).json.results as Record<
      string,
      any
    >[];

  it('a dead replacement: exit 3, nothing switched, the file untouched, the refusal audited', async () => {
    const dead = `turn:127.0.0.1:${await freePort()}`;
    const { r, envFile, original } = await attempt('fo-a-dead', dead);
    expect(r.code, r.stderr).toBe(3);
    expect(JSON.parse(r.stdout).error).toMatchObject({
      code: 'turn_replacement_unreachable',
      message: expect.stringContaining(`replacement TURN server ${dead} is not responding`),
    });
    expect(r.stderr).toMatch(/nothing was switched/);
    expect(readFileSync(envFile, 'utf8')).toBe(original);
    expect(readdirSync(dir3.dir).filter((f) => f.includes('.bak-'))).toEqual([]);
    expect(sig3.events.filter((e) => e.event === 'turn_servers_reloaded')).toEqual([]);
    const events = await logged('fo-a-dead');
    expect(events.map((e) => e.event)).toEqual(['failover_initiated', 'failover_step', 'failover_completed']);
    expect(events[1]!.metadata).toMatchObject({ step: 'test the replacement', ok: false });
    expect(events[2]!.metadata).toMatchObject({ ok: false });
  });

  it('a replacement refusing the credentials: exit 4, nothing switched', async () => {
    const { r, envFile, original } = await attempt('fo-a-401', live.url, 'wrong-pass');
    expect(r.code, r.stderr).toBe(4);
    expect(JSON.parse(r.stdout).error.code).toBe('turn_replacement_refused');
    expect(r.stdout + r.stderr).not.toContain('wrong-pass');
    expect(readFileSync(envFile, 'utf8')).toBe(original);
    expect((await logged('fo-a-401')).map((e) => e.event)).not.toContain('turn_server_failover');
  });

  it('a replacement it cannot test (TURN over TLS) needs --no-probe: exit 2 before anything runs', async () => {
    const { r } = await attempt('fo-a-turns', 'turns:127.0.0.1:5349', 'test-pass', ['--dry-run']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.message).toMatch(/cannot be probed/);
    expect(r.stderr).toMatch(/--no-probe/);
    const skipped = await attempt('fo-a-turns-2', 'turns:127.0.0.1:5349', 'test-pass', [
      '--dry-run',
      '--no-probe',
    ]);
    expect(skipped.r.code, skipped.r.stderr).toBe(0);
    expect(JSON.parse(skipped.r.stdout).plan.steps[0]).toBe('skip testing turns:127.0.0.1:5349 (--no-probe)');
  });
});
