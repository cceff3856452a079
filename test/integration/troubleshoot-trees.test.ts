// The decision trees walked on a real local stack with each fault really present: a dead STUN port in
// signaling's /config, a registered peer that never creates a peer connection, a self-signed TLS
// certificate under PRODUCTION_MODE, an agent whose connection reports are never closed, and a peer
// signing with a key that is not the one it registered. Each also has its healthy counterpart, so no
// walk can pass by always naming the same cause.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { WitnessClient } from '../../src/clients/witness.js';
import { createSigner, generateKeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { EvidenceSources } from '../../src/ops/troubleshoot/evidence.js';
import { troubleshoot } from '../../src/ops/troubleshoot/run.js';
import type { SignalingDeps } from '../../src/services/signaling/types.js';
import { systemClock } from '../../src/util/clock.js';
import { ROOT, run, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { freePort } from '../helpers/processes.js';
import { writeReleaseRecord } from '../helpers/release-record.js';
import {
  ADMIN,
  connect,
  getJson,
  type RunningSignaling,
  SETTINGS,
  startSignaling,
  type TestClient,
} from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, type RunningWitness, startWitness } from '../helpers/witness.js';

let turn: RunningTurnserver;
let witness: RunningWitness;
let sig: RunningSignaling;
let agents: MeshAgent[] = [];
let clients: WitnessClient[] = [];
let sockets: TestClient[] = [];
let cleanups: (() => void)[] = [];

beforeAll(async () => {
  turn = await startCoturn();
});
afterAll(async () => {
  await turn.stop();
});
afterEach(async () => {
  for (const s of sockets) s.close();
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(clients.map((c) => c.close()));
  await sig?.stop();
  await witness?.stop();
  for (const c of cleanups) c();
  agents = [];
  clients = [];
  sockets = [];
  cleanups = [];
});

function witnessClient(producer: string): WitnessClient {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const c = new WitnessClient({ url: witness.url, apiKey: API_KEY, producer, spoolDir: dir });
  clients.push(c);
  return c;
}

async function stack(overrides: Partial<SignalingDeps> = {}, stun = [turn.stunUrl]) {
  witness = await startWitness();
  sig = await startSignaling({
    settings: { ...SETTINGS, stunServers: stun, turnServers: [turn.url] },
    events: witnessClient('signaling'),
    ...overrides,
  });
}

function agent(id: string): MeshAgent {
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [{ urls: turn.stunUrl }],
    loopbackOnly: true,
    statsIntervalMs: 300,
    memoryIntervalMs: 300,
    events: witnessClient(id),
  });
  agents.push(a);
  a.start();
  return a;
}

async function flushed(): Promise<void> {
  const ok = await Promise.all(clients.map((c) => c.flush()));
  expect(ok.every(Boolean)).toBe(true);
}

function sources(o: Partial<EvidenceSources> = {}): EvidenceSources {
  return {
    signaling: [sig.http],
    witness: { url: witness.url },
    turn: { username: 'ifmesh', password: 'test-pass' },
    production: false,
    allowSelfSigned: false,
    clock: systemClock,
    ...o,
  };
}

const tlsFixture = () => ({
  cert: readFileSync(path.join(ROOT, 'fixtures/tls/test-cert.pem'), 'utf8'),
  key: readFileSync(path.join(ROOT, 'fixtures/tls/test-key.pem'), 'utf8'),
});

/** `ifmesh troubleshoot ARGS` in-process, against `signaling` and this stack's witness, `dir` its state. */
const troubleshootCli = (dir: string, signaling: string, ...args: string[]) =>
  run(['troubleshoot', ...args, '--signaling', signaling, '--witness', witness.url, '--state-dir', dir]);

const answers = (r: { walk: { path: { answer: string }[] } }) => r.walk.path.map((s) => s.answer);

/** Two real agents that connect, and their events in the witness. */
async function connectedPair(a: string, b: string): Promise<void> {
  const first = agent(a);
  await waitFor(() => first.signalingUrl !== undefined, `${a} to register`);
  const second = agent(b);
  await second.waitForPeers([a], 20_000);
  await waitFor(() => first.links.get(b)?.ready === true, `${a} to see ${b}`);
  await flushed();
}

/** Tree 1 for the pair, once it reaches its fourth question (the pair has reported its connection). */
async function walkOnceConnected(a: string, b: string) {
  await waitFor(
    async () =>
      (await troubleshoot('connection-timeout', { agent: a, peer: b }, sources())).walk.path.length === 4,
    'the pair to report its connection',
  );
  return troubleshoot('connection-timeout', { agent: a, peer: b }, sources());
}

describe('tree 1: connection establishment failure', () => {
  it('names STUN unreachable when /config points at a dead STUN port (ifmesh troubleshoot --json)', async () => {
    const dead = await freePort();
    await stack({}, [`stun:127.0.0.1:${dead}`]);
    const a = await connect(sig.url);
    const b = await connect(sig.url);
    sockets.push(a, b);
    await a.register('stun-a');
    await b.register('stun-b');
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const r = await run([
      'troubleshoot',
      'connection-timeout',
      'stun-a',
      'stun-b',
      '--signaling',
      sig.http,
      '--witness',
      witness.url,
      '--state-dir',
      dir,
      '--json',
    ]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.walk.path.map((s: { question: string }) => s.question)).toEqual([
      'Agent registered on signaling server?',
      'STUN server reachable?',
    ]);
    expect(answers(report)).toEqual(['yes', 'no']);
    expect(report.walk.path[1].evidence.stun[0]).toMatchObject({ url: `stun:127.0.0.1:${dead}`, ok: false });
    expect(report.walk.root_cause.id).toBe('stun_unreachable');
    expect(report.walk.actions.join(' ')).toMatch(/STUN/);
    // the human rendering shows the same path
    const text = await run([
      'troubleshoot',
      'connection-timeout',
      'stun-a',
      'stun-b',
      '--signaling',
      sig.http,
      '--witness',
      witness.url,
      '--state-dir',
      dir,
    ]);
    expect(text.stdout).toContain('2. STUN server reachable?  no');
    expect(text.stdout).toContain('Root cause: STUN server unreachable');
  });

  it('names no ICE candidates when the peer is registered but never creates a peer connection; a live pair is healthy', async () => {
    await stack();
    const z = agent('zz-agent');
    await waitFor(() => z.signalingUrl !== undefined, 'zz-agent to register');
    // Registers later, so it is the one expected to offer: a signaling client that never does.
    const silent = await connect(sig.url);
    sockets.push(silent);
    await silent.register('aa-silent');
    // two real agents that do connect, as the control
    await connectedPair('p-1', 'p-2');

    const bad = await troubleshoot('connection-timeout', { agent: 'zz-agent', peer: 'aa-silent' }, sources());
    expect(answers(bad)).toEqual(['yes', 'yes', 'no']);
    expect(bad.walk.path[2]!.evidence).toMatchObject({ sent_by_agent: 0, sent_by_peer: 0 });
    expect(bad.walk.root_cause?.id).toBe('no_ice_candidates');

    const good = await walkOnceConnected('p-1', 'p-2');
    expect(answers(good)).toEqual(['yes', 'yes', 'yes', 'yes']);
    expect(
      (good.walk.path[2]!.evidence as { sent_by_agent: number; sent_by_peer: number }).sent_by_peer,
    ).toBeGreaterThan(0);
    expect(good.walk.root_cause).toBeNull();

    // The peer goes away: no direct path now, and the walk says the peer is gone before it blames
    // TURN (which allocates here).
    await agents.find((x) => x.id === 'p-2')!.stop();
    await waitFor(
      async () =>
        (await troubleshoot('connection-timeout', { agent: 'p-1', peer: 'p-2' }, sources())).walk.path
          .length === 5,
      'the walk to reach the peer question',
    );
    const gone = await troubleshoot('connection-timeout', { agent: 'p-1', peer: 'p-2' }, sources());
    expect(gone.walk.path.map((x) => x.question).slice(3)).toEqual([
      'Direct P2P connection possible?',
      'Peer registered on signaling server?',
    ]);
    expect(answers(gone)).toEqual(['yes', 'yes', 'yes', 'no', 'no']);
    expect(gone.walk.root_cause?.id).toBe('peer_not_registered');
    // The advice names the real peer, ready to paste: its deploy log and its own walk.
    const advice = gone.walk.actions.join('\n');
    expect(advice).toContain('ifmesh logs deploy-agent-p-2');
    expect(advice).toContain('ifmesh troubleshoot connection-timeout p-2 p-1');
    expect(advice).not.toMatch(/\b(PEER|AGENT)\b/);
  }, 60_000);

  it('walks on past a STUN list that is empty (none configured is not unreachable) to a connected pair', async () => {
    await stack({}, []);
    await connectedPair('n-1', 'n-2');
    const r = await walkOnceConnected('n-1', 'n-2');
    expect(answers(r)).toEqual(['yes', 'none configured', 'yes', 'yes']);
    expect(r.walk.root_cause).toBeNull();
  }, 60_000);
});

describe('agent ids nobody knows', () => {
  it('are refused by every tree (exit 2); an unregistered agent of the current release is still diagnosed', async () => {
    await stack();
    const registered = await connect(sig.url);
    sockets.push(registered);
    await registered.register('ku-2');
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    // ku-1 is deployed by the fleet's current release but never registered (down, or firewalled).
    writeReleaseRecord(dir, { id: 'r-ku', agents: ['ku-1', 'ku-2'] });
    const ts = (...args: string[]) => troubleshootCli(dir, sig.http, ...args);

    const down = await ts('connection-timeout', 'ku-1', 'ku-2', '--json');
    expect(down.code).toBe(1);
    expect(JSON.parse(down.stdout).walk.root_cause.id).toBe('agent_not_registered');

    for (const [args, who] of [
      [['connection-timeout', 'knu-1', 'ku-2'], 'agent knu-1'],
      [['connection-timeout', 'ku-2', 'knu-2'], 'peer knu-2'],
      [['dtls', 'knu-1', 'ku-2'], 'agent knu-1'],
      [['memory', 'knu-1'], 'agent knu-1'],
      [['latency', 'knu-1'], 'agent knu-1'],
    ] as const) {
      const r = await ts(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`${who} is not registered on any signaling instance`);
      expect(r.stderr).toContain('ifmesh agents list');
    }
    // The fleet as a whole needs no id.
    expect((await ts('memory')).code).toBe(0);
  });
});

describe('signaling instances not serving, whatever the tree', () => {
  it('a dead instance of two is a warning with its fix in every tree, never "No fault found" exit 0', async () => {
    await stack();
    const other = await startSignaling({ settings: { ...SETTINGS, stunServers: [turn.stunUrl] } });
    await other.stop();
    await connectedPair('dead-1', 'dead-2');
    await walkOnceConnected('dead-1', 'dead-2');
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const signaling = `${sig.http},${other.http}`;
    const ts = (...args: string[]) => troubleshootCli(dir, signaling, ...args);
    for (const args of [
      ['connection-timeout', 'dead-1', 'dead-2'],
      ['latency', 'dead-1'],
      ['packet-loss', 'dead-1'],
      ['memory'],
      ['dtls', 'dead-1', 'dead-2'],
    ]) {
      const r = await ts(...args, '--json');
      expect(r.code, args.join(' ')).toBe(1);
      expect(JSON.parse(r.stdout).findings, args.join(' ')).toEqual([
        expect.objectContaining({
          id: 'signaling_down',
          instances: [expect.objectContaining({ url: other.http })],
          actions: expect.arrayContaining([expect.stringContaining('ifmesh incident p1')]),
        }),
      ]);
    }
    const text = await ts('latency', 'dead-1');
    expect(text.code).toBe(1);
    expect(text.stdout).not.toContain('No fault found');
    expect(text.stdout).toContain(`Warning: 1 of 2 signaling instances do not answer`);
    expect(text.stdout).toContain(other.http);
    expect(text.stdout).toContain('ifmesh incident p1');
    // Both instances serving: no finding, and the same walk is healthy.
    const one = await troubleshootCli(dir, sig.http, 'latency', 'dead-1');
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('No fault found');
  }, 60_000);

  it('an http:// URL to a TLS port is named as the wrong URL (use https://), not a server down', async () => {
    await stack({ tls: tlsFixture() });
    const plain = sig.http.replace(/^https:/, 'http:');
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const ts = (...args: string[]) => troubleshootCli(dir, plain, ...args);
    const tree1 = await ts('connection-timeout', 'tls-1', 'tls-2', '--json');
    expect(tree1.code).toBe(1);
    const report = JSON.parse(tree1.stdout);
    expect(answers(report)).toEqual(['no', 'TLS on an http:// URL']);
    expect(report.walk.root_cause.id).toBe('signaling_url_plain_http');
    expect(report.walk.actions.join('\n')).toContain('https://');
    expect(report.walk.actions.join('\n')).not.toMatch(/failover|restart/i);

    const latency = await ts('latency', 'tls-1');
    expect(latency.code).toBe(1);
    expect(latency.stdout).not.toContain('No fault found');
    expect(latency.stdout).toContain('[signaling_url_plain_http]');
    expect(latency.stdout).toContain(`use https://${new URL(plain).host}`);
    expect(latency.stdout).not.toContain('signaling_down');
  });
});

describe('tree 4: security event', () => {
  const tls = tlsFixture;

  it('names a self-signed certificate in production from the TLS certificate signaling presents', async () => {
    await stack({ tls: tls() });
    const prod = await troubleshoot('dtls', { agent: 'a', peer: 'b' }, sources({ production: true }));
    expect(answers(prod)).toEqual(['dtls', 'yes']);
    expect(prod.walk.path[1]!.evidence).toMatchObject({
      production_mode: true,
      self_signed_tls: [expect.anything()],
    });
    expect(prod.walk.root_cause?.id).toBe('self_signed_in_production');
    // The same certificate outside production is no security event.
    const dev = await troubleshoot('dtls', { agent: 'a', peer: 'b' }, sources({ production: false }));
    expect(answers(dev)).toEqual(['none']);
    expect(dev.walk.root_cause).toBeNull();
  });

  it('names repeated signature failures from one peer signing with a wrong key', async () => {
    await stack();
    const tx = agent('sig-tx');
    await waitFor(() => tx.signalingUrl !== undefined, 'sig-tx to register');
    const rx = agent('sig-rx');
    await Promise.all([tx.waitForPeers(['sig-rx'], 20_000), rx.waitForPeers(['sig-tx'], 20_000)]);
    await flushed();
    const clean = await troubleshoot('dtls', { agent: 'sig-rx', peer: 'sig-tx' }, sources());
    expect(clean.walk.root_cause).toBeNull();

    const mallory = createSigner(generateKeyPair().seed);
    for (let i = 0; i < 3; i++) {
      const forged = signMessage(
        buildMessage({ from: 'sig-tx', to: 'sig-rx', type: 'ping' }, Date.now()),
        mallory,
      );
      tx.links.get('sig-rx')!.dc!.send(JSON.stringify(forged));
    }
    await waitFor(() => rx.counters.signature_failures === 3, 'the receiver to count three forgeries');
    await flushed();
    const r = await troubleshoot('dtls', { agent: 'sig-rx', peer: 'sig-tx' }, sources());
    expect(answers(r)).toEqual(['signature', 'one_peer']);
    expect(r.walk.path[1]!.evidence).toMatchObject({ failures: 3, by_peer: { 'sig-tx': 3 } });
    expect(r.walk.root_cause?.id).toBe('repeated_signature_failures_one_peer');
    expect(r.walk.actions[0]).toContain('ifmesh agents block');
  }, 60_000);
});

describe("tree 4: an operator's block", () => {
  it('leaves a blocked identity\'s refused reconnects out of "unauthorized attempts"; a forged registration still counts', async () => {
    await stack();
    await connectedPair('blk-1', 'blk-2');
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const agentsCli = (...args: string[]) =>
      run(['agents', ...args, '--signaling', sig.http, '--state-dir', dir, '--json'], {
        env: { SIGNALING_ADMIN_TOKEN: ADMIN },
      });
    // The operator blocks agent blk-3; it keeps trying to come back and is refused; then unblocked.
    expect((await agentsCli('block', 'blk-3', '--reason', 'drill')).code).toBe(0);
    for (let i = 0; i < 2; i++) {
      const again = await connect(sig.url);
      sockets.push(again);
      const hello = await again.next('hello');
      again.send(again.registerFrame('blk-3', hello.nonce));
      expect((await again.closed).reason).toBe('blocked');
    }
    expect((await agentsCli('unblock', 'blk-3')).code).toBe(0);
    await flushed();
    const r = await troubleshoot('dtls', { agent: 'blk-1', peer: 'blk-2' }, sources());
    expect(answers(r)).toEqual(['none']);
    expect(r.walk.root_cause).toBeNull();
    expect(r.walk.path[0]!.evidence).toMatchObject({
      signaling_auth_failure: 0,
      refused_blocked_by_operator: 2,
    });

    // A registration signed with another key than the one it presents is a real attempt: counted.
    const forger = await connect(sig.url);
    sockets.push(forger);
    const hello = await forger.next('hello');
    forger.send({
      ...forger.registerFrame('blk-2', hello.nonce),
      public_key: toBase64url(generateKeyPair().publicKey),
    });
    await forger.closed;
    await flushed();
    const attacked = await troubleshoot('dtls', { agent: 'blk-1', peer: 'blk-2' }, sources());
    expect(answers(attacked)).toEqual(['unauthorized']);
    expect(attacked.walk.path[0]!.evidence).toMatchObject({ signaling_auth_failure: 1 });
    expect(attacked.walk.root_cause?.id).toBe('unauthorized_connection_attempt');
  }, 60_000);
});

describe('memory: connection leak', () => {
  // Signaling keeps only reports about peers registered in the reporter's mesh (one agent must not
  // move the fleet's connection figures beyond its own share), so a leak cannot be faked with
  // reports about made-up peers: they are refused and counted, and the tree does not call a leak.
  it('refuses reports about peers that are not registered, and does not call them a leak', async () => {
    await stack();
    const leaky = await connect(sig.url);
    const tidy = await connect(sig.url);
    sockets.push(leaky, tidy);
    await leaky.register('leaky');
    await tidy.register('tidy');
    for (let i = 0; i < 12; i++)
      leaky.send({
        type: 'connection-state',
        peer_id: `ghost-${i}`,
        state: 'connected',
        candidate_type: 'host',
        rtt_ms: 1,
      });
    leaky.send({
      type: 'connection-state',
      peer_id: 'tidy',
      state: 'connected',
      candidate_type: 'host',
      rtt_ms: 1,
    });
    await waitFor(async () => {
      const m = (await getJson(`${sig.http}/metrics`)).text;
      return /webrtc_agent_reports_limited_total\{kind="connection",reason="unknown_peer"\} 12/.test(m);
    }, 'signaling to refuse the twelve reports about unregistered peers');
    await waitFor(async () => {
      const r = await troubleshoot('memory', { agent: 'leaky' }, sources());
      return r.walk.path[0]!.evidence.open_connections === 1;
    }, 'signaling to hold the one real report');
    const r = await troubleshoot('memory', { agent: 'leaky' }, sources());
    expect(r.walk.path[0]!.evidence).toMatchObject({ open_connections: 1, agents: 2, expected: 1 });
    expect(answers(r)[0]).toBe('no');
    expect(r.walk.root_cause?.id).not.toBe('connection_leak');
  });
});
