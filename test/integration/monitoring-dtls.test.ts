import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { run } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { getJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

// A man in the middle of signaling swaps the DTLS fingerprint in the SDP it relays to one agent:
// what DTLS certificate validation exists to catch. That agent must refuse the connection, count
// it, and the count must reach webrtc_dtls_validation_failures_total and `monitoring check`.
let turn: RunningTurnserver | undefined;
let sig: RunningSignaling | undefined;
let proxy: WebSocketServer | undefined;
const agents: MeshAgent[] = [];

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  for (const c of proxy?.clients ?? []) c.terminate();
  await sig?.stop();
  await turn?.stop();
});

/** Relays WebSocket frames to `upstream`, rewriting the fingerprint of every offer and answer sent down. */
async function fingerprintSwapper(upstream: string): Promise<{ url: string; swapped: () => number }> {
  let swapped = 0;
  proxy = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  proxy.on('connection', (down) => {
    const up = new WebSocket(upstream, { perMessageDeflate: false });
    const pending: string[] = [];
    up.on('open', () => {
      for (const m of pending.splice(0)) up.send(m);
    });
    down.on('message', (d) =>
      up.readyState === WebSocket.OPEN ? up.send(d.toString()) : pending.push(d.toString()),
    );
    up.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if ((f.type === 'offer' || f.type === 'answer') && typeof f.sdp === 'string') {
        f.sdp = f.sdp.replace(/a=fingerprint:sha-256 [0-9A-F:]+/gi, () => {
          swapped += 1;
          return `a=fingerprint:sha-256 ${Array.from({ length: 32 }, () => 'AB').join(':')}`;
        });
      }
      down.send(JSON.stringify(f));
    });
    up.on('close', () => down.close());
    down.on('close', () => up.close());
    up.on('error', () => down.close());
  });
  await new Promise((r) => proxy!.once('listening', r));
  const { port } = proxy.address() as { port: number };
  return { url: `ws://127.0.0.1:${port}`, swapped: () => swapped };
}

describe('DTLS validation failures', () => {
  it('are counted by the agent, exposed by signaling and alerted by monitoring check', async () => {
    turn = await startCoturn();
    sig = await startSignaling();
    const mitm = await fingerprintSwapper(sig.url);
    const mk = (id: string, url: string) => {
      const a = new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: [url],
        iceServers: [{ urls: turn!.stunUrl }],
        loopbackOnly: true,
        memoryIntervalMs: 200,
      });
      agents.push(a);
      a.start();
      return a;
    };
    const victim = mk('victim', mitm.url);
    await waitFor(
      async () => (await getJson(`${sig!.http}/agents`)).json.agents.length === 1,
      'victim registered',
    );
    mk('peer', sig.url);
    await waitFor(() => victim.counters.dtls_failures > 0, 'the victim to refuse the forged fingerprint', {
      timeoutMs: 20_000,
    });
    expect(mitm.swapped()).toBeGreaterThan(0);
    expect(victim.links.get('peer')?.ready ?? false).toBe(false);
    await waitFor(
      async () =>
        /^webrtc_dtls_validation_failures_total [1-9]/m.test((await getJson(`${sig!.http}/metrics`)).text),
      'signaling to count the failure',
    );
    const r = await run(['monitoring', 'check', '--sample-ms', '0', '--signaling', sig.http, '--json']);
    expect(r.code).toBe(1);
    const row = JSON.parse(r.stdout).rows.find((x: { id: string }) => x.id === 'dtls_failures');
    expect(row.status).toBe('alert');
    expect(row.value).toBeGreaterThan(0);
  }, 60_000);
});
