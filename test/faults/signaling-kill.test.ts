// The primary signaling instance dies under traffic. Two `ifmesh signaling serve` processes share a
// real Redis; two real werift agents list both (the first is their primary) and exchange sequenced,
// signed messages over their DataChannel the whole time. First the primary is SIGKILLed: both agents
// must register on the secondary, within the failover timeout + 2 s (the figure; the test itself
// only waits for it), while the DataChannel they already had carries on — the same link, never
// closed, every message delivered once and in order. Then the primary comes back and the secondary
// is stopped with SIGTERM: the agents move back, and still no message is lost.
import { afterAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { type Service, startSignalingProcess } from '../helpers/processes.js';
import { freePortRange, startRedis, type TestRedis } from '../helpers/redis.js';
import { getJson } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { recordFigure } from './figures.js';

const FAILOVER_TIMEOUT_MS = 3_000;
const MESSAGES = 300;
const stops: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('primary signaling killed during traffic', () => {
  it('agents move to the secondary; the established DataChannel carries every message, in order', async () => {
    const redis: TestRedis = await startRedis();
    stops.push(() => redis.cleanup());
    const base = await freePortRange(2);
    const serve = async (i: number): Promise<Service> => {
      const svc = await startSignalingProcess([
        '--port',
        String(base + i),
        '--cluster',
        redis.url,
        '--instance-id',
        `sig-${i + 1}`,
      ]);
      stops.push(() => svc.stop());
      return svc;
    };
    let primary = await serve(0);
    const secondary = await serve(1);
    const urls = [primary.url, secondary.url];
    const http = (u: string) => u.replace('ws://', 'http://');
    const received: number[] = [];
    const agents = ['agent-a', 'agent-b'].map(
      (agentId) =>
        new MeshAgent({
          agentId,
          identity: generateKeyPair(),
          signalingUrls: urls,
          iceServers: [],
          loopbackOnly: true,
          failoverTimeoutMs: FAILOVER_TIMEOUT_MS,
          onMessage: (_from, m) => {
            if (m.type === 'seq') received.push((m.payload as { n: number }).n);
          },
        }),
    );
    for (const a of agents) {
      stops.push(() => a.stop());
      a.start();
    }
    const [a, b] = agents as [MeshAgent, MeshAgent];
    await a.waitForPeers(['agent-b'], 20_000);
    await b.waitForPeers(['agent-a'], 20_000);
    const link = a.links.get('agent-b')!;
    let linkClosed = false;
    /** Agents registered on this instance itself (the registry is the cluster's, so /agents lists all). */
    const localAgents = async (url: string) =>
      ((await getJson(`${http(url)}/stats`).catch(() => undefined))?.json?.local_agents as
        | number
        | undefined) ?? 0;

    // Sequenced traffic from a to b for the whole scenario; it stops after MESSAGES.
    let sent = 0;
    const traffic = (async () => {
      for (; sent < MESSAGES; sent++) {
        await a.send('agent-b', 'seq', { n: sent });
        if (!link.ready || link.closed) linkClosed = true;
        await sleep(10);
      }
    })();

    await waitFor(() => sent >= 80, '80 messages sent before the kill');
    const killedAt = Date.now();
    primary.kill('SIGKILL');
    await primary.exited;
    await waitFor(
      () => agents.every((x) => x.signalingUrl === secondary.url),
      'both agents on the secondary',
      {
        timeoutMs: 30_000,
      },
    );
    await waitFor(async () => (await localAgents(secondary.url)) === 2, 'both registered on the secondary');
    const movedMs = Date.now() - killedAt;

    // The primary returns; the secondary is stopped gracefully.
    await waitFor(() => sent >= 180, '180 messages sent before the SIGTERM');
    primary = await serve(0);
    const termAt = Date.now();
    secondary.kill('SIGTERM');
    await waitFor(
      () => agents.every((x) => x.signalingUrl === primary.url),
      'both agents back on the primary',
      {
        timeoutMs: 30_000,
      },
    );
    await waitFor(async () => (await localAgents(primary.url)) === 2, 'both registered on the primary');
    const backMs = Date.now() - termAt;
    await traffic;
    await waitFor(() => received.length >= MESSAGES, `${MESSAGES} messages received`, {
      timeoutMs: 20_000,
    }).catch(() => {});
    const inOrder = received.every((n, i) => n === i);
    const sameLink = a.links.get('agent-b') === link && link.ready && !linkClosed;
    const bound = FAILOVER_TIMEOUT_MS + 2_000;
    recordFigure({
      fault: 'primary signaling kill -9 during traffic',
      trials: 1,
      expected: `agents on the secondary within ${bound / 1000} s; DataChannel unaffected; 0 lost`,
      observed: `moved in ${(movedMs / 1000).toFixed(1)} s; ${sameLink ? 'same channel' : 'CHANNEL REOPENED'}; ${received.length} of ${MESSAGES} delivered${inOrder ? ', in order' : ', OUT OF ORDER'}`,
      figure: `${(movedMs / 1000).toFixed(1)} s to move`,
      ok: movedMs <= bound && sameLink && inOrder && received.length === MESSAGES,
    });
    recordFigure({
      fault: 'signaling SIGTERM during traffic',
      trials: 1,
      expected: 'agents move at once to the other instance; 0 lost',
      observed: `moved in ${(backMs / 1000).toFixed(1)} s; ${received.length} of ${MESSAGES} delivered`,
      figure: `${(backMs / 1000).toFixed(1)} s to move`,
      ok: backMs <= bound && received.length === MESSAGES,
    });
    expect(received).toEqual(Array.from({ length: MESSAGES }, (_, i) => i));
    expect(sameLink).toBe(true);
  }, 120_000);
});
