// Issue 21, point 4: one agent cannot break the fleet's HTTP API or move its metrics alone. Real
// signaling servers on loopback; time is the test's (the server's `now`), so rates are exact.
import { afterEach, describe, expect, it } from 'vitest';
import { METADATA_LIMITS } from '../../src/protocol/signaling.js';
import {
  connect,
  getJson,
  type RunningSignaling,
  startSignaling,
  type TestClient,
} from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

let sig: RunningSignaling | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await sig?.stop();
  sig = undefined;
});

async function client(): Promise<TestClient> {
  const c = await connect(sig!.url);
  clients.push(c);
  return c;
}

/** Registers `id` with `metadata` (an object, or its JSON text); the first answer and, on error, the close. */
async function registerWith(id: string, metadata: unknown) {
  const c = await client();
  const frame = c.registerFrame(id, (await c.next('hello')).nonce);
  const text = typeof metadata === 'string' && metadata.startsWith('{') ? metadata : JSON.stringify(metadata);
  c.send(JSON.stringify({ ...frame, metadata: '@M@' }).replace('"@M@"', text));
  const first = await c.next();
  return { first, closed: first.type === 'error' ? await c.closed : undefined, c };
}

const metric = async (name: string): Promise<number | undefined> => {
  const text = (await getJson(`${sig!.http}/metrics`)).text;
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (x) => `\\${x}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

describe('registration metadata is flat and bounded (issue 21.4)', () => {
  it('refuses metadata nested 6,000 levels deep with a clear error, and /agents and /peers keep answering', async () => {
    sig = await startSignaling();
    const ok = await client();
    await ok.register('agent-ok');
    // As text: JSON.stringify itself overflows the stack on such a value (the 500s' cause).
    const deep = `${'{"a":'.repeat(6_000)}{}${'}'.repeat(6_000)}`;
    const r = await registerWith('agent-deep', deep);
    expect(r.first).toMatchObject({ type: 'error', code: 'invalid_metadata' });
    expect(r.first.message).toContain('metadata.a is an object');
    expect(r.first.message).toContain('flat object');
    expect(r.closed?.code).toBe(4400);
    // Before the fix the agent registered and both answers were 500s while it stayed.
    const agents = await getJson(`${sig.http}/agents`);
    expect(agents.status).toBe(200);
    expect(agents.json.agents.map((a: { agent_id: string }) => a.agent_id)).toEqual(['agent-ok']);
    expect((await getJson(`${sig.http}/peers/agent-ok`)).status).toBe(200);
    expect((await getJson(`${sig.http}/peers/agent-deep`)).status).toBe(404);
  });

  it.each([
    ['an array value', { tags: ['a'] }, 'metadata.tags is an array'],
    ['a nested object', { where: { dc: 'x' } }, 'metadata.where is an object'],
    [
      'too many keys',
      Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])),
      'metadata has 33 keys',
    ],
    ['a long string', { note: 'x'.repeat(257) }, 'metadata.note is 257 characters long'],
    ['a key with spaces', { 'a b': 1 }, 'metadata key "a b" is not allowed'],
    [
      'more than 4 KiB',
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 'y'.repeat(250)])),
      /^metadata is \d+ bytes:/,
    ],
    ['not an object', 'text', 'metadata is not an object'],
  ] as [string, unknown, string | RegExp][])(
    'refuses %s (4400 invalid_metadata)',
    async (_name, metadata, why) => {
      sig = await startSignaling();
      const r = await registerWith('agent-x', metadata);
      expect(r.first).toMatchObject({ code: 'invalid_metadata' });
      expect(r.first.message).toMatch(why);
      expect(r.closed?.code).toBe(4400);
    },
  );

  it('accepts flat metadata at the limits and shows it in /agents and /peers', async () => {
    sig = await startSignaling();
    const metadata = {
      mesh: 'blue',
      region: 'eu-west',
      weight: 2.5,
      canary: true,
      note: null,
      label: 'z'.repeat(METADATA_LIMITS.maxStringLength),
    };
    const r = await registerWith('agent-flat', metadata);
    expect(r.first.type).toBe('registered');
    expect((await getJson(`${sig.http}/agents`)).json.agents[0].metadata).toEqual(metadata);
    expect((await getJson(`${sig.http}/peers/agent-flat`)).json.metadata).toEqual(metadata);
  });
});

describe("agents' reports are bounded, rate-limited and weigh only their own pairs (issue 21.4)", () => {
  it('clamps counters to a plausible rate and drops reports over the per-agent rate', async () => {
    let now = Date.parse('2026-11-22T12:00:00Z');
    sig = await startSignaling({
      now: () => now,
      rateLimit: { burst: 10_000, perSecond: 100, disconnectAfter: 10_000 },
    });
    const rogue = await client();
    await rogue.register('rogue');
    const honest = await client();
    await honest.register('honest');

    // 10^15 messages and 10^12 signature failures the instant it registered: one second's worth counts.
    rogue.send({ type: 'metrics-report', messages_sent: 1e15, signature_failures: 1e12, memory_bytes: 1e20 });
    await waitFor(async () => (await metric('webrtc_messages_sent_total')) === 10_000, 'the first report');
    expect(await metric('webrtc_signature_verification_failures_total')).toBe(1_000);
    expect(await metric('webrtc_memory_bytes{agent_id="rogue"}')).toBe(2 ** 40);
    // A minute later, another 10^15: at most a minute's worth (10,000/s).
    now += 60_000;
    rogue.send({ type: 'metrics-report', messages_sent: 2e15 });
    honest.send({ type: 'metrics-report', messages_sent: 15 });
    await waitFor(async () => (await metric('webrtc_messages_sent_total')) === 610_015, 'the second reports');
    expect(await metric('webrtc_agent_reports_limited_total{kind="metrics",reason="clamped"}')).toBe(2);

    // A flood at one instant: the bucket (burst 10, one spent a moment ago) takes nine, drops the rest.
    for (let i = 0; i < 30; i++) rogue.send({ type: 'metrics-report', messages_sent: 2e15 });
    await waitFor(
      async () => (await metric('webrtc_agent_reports_limited_total{kind="metrics",reason="rate"}')) === 21,
      'the flood to be limited',
    );
    // An honest agent's reports are untouched by the rogue's.
    honest.send({ type: 'metrics-report', messages_sent: 20 });
    await waitFor(async () => (await metric('webrtc_messages_sent_total')) === 610_020, "honest's report");
  });

  it('takes connection reports only about peers of the same mesh, one RTT sample per pair per second, and bounded state flapping', async () => {
    const now = Date.parse('2026-11-22T12:00:00Z');
    sig = await startSignaling({
      now: () => now,
      rateLimit: { burst: 10_000, perSecond: 100, disconnectAfter: 10_000 },
    });
    const [h1, h2, rogue] = [await client(), await client(), await client()];
    await h1.register('honest-1');
    await h2.register('honest-2');
    await rogue.register('rogue');
    const other = await client();
    const frame = other.registerFrame('elsewhere', (await other.next('hello')).nonce);
    other.send({ ...frame, metadata: { mesh: 'other' } });
    await other.next('registered');

    const report = (c: TestClient, peer: string, state: string, rtt: number | null) =>
      c.send({ type: 'connection-state', peer_id: peer, state, candidate_type: 'host', rtt_ms: rtt });
    report(h1, 'honest-2', 'connected', 5);
    // Made-up peers, another mesh's agent and itself: dropped.
    for (const peer of ['ghost-1', 'ghost-2', 'elsewhere', 'rogue'])
      report(rogue, peer, 'connected', 600_000);
    // One real pair reported a hundred times at one instant, with a ten-minute RTT: one sample.
    for (let i = 0; i < 100; i++) report(rogue, 'honest-1', 'connected', 600_000);
    // Another pair flapping: 20 state changes are taken (a healing pair's attempts fit); of the other
    // 80 reports, the 40 that would change the state again are dropped, the 40 repeating it change nothing.
    for (let i = 0; i < 100; i++) report(rogue, 'honest-2', i % 2 ? 'failed' : 'connected', null);
    await waitFor(
      async () =>
        (await metric('webrtc_agent_reports_limited_total{kind="connection",reason="rate"}')) === 40 &&
        (await metric('webrtc_agent_reports_limited_total{kind="connection",reason="unknown_peer"}')) === 4,
      'every report to be judged',
    );
    expect(await metric('webrtc_rtt_milliseconds_count{connection_type="p2p"}')).toBe(2);
    expect(await metric('webrtc_connections_established_total')).toBe(12);
    expect(await metric('webrtc_connections_failed_total')).toBe(10);
    const pairs = (await getJson(`${sig.http}/connections`)).json.connections.map(
      (c: { agent_id: string; peer_id: string }) => `${c.agent_id}>${c.peer_id}`,
    );
    expect(pairs.sort()).toEqual(['honest-1>honest-2', 'rogue>honest-1', 'rogue>honest-2']);
  });
});
