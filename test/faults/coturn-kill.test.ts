// The TURN server carrying a relay-only pair dies: two real coturn servers, two real werift agents
// restricted to relay candidates, connected through one of them, which is SIGKILLed; the pair must
// detect the dead path (heartbeat timeout), heal, and carry signed pings again through the other one.
// Figure: time from the kill to a signed pong over the new relay.
import { afterAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { startCoturn } from '../helpers/coturn.js';
import { type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { recordFigure } from './figures.js';

const HEARTBEAT_TIMEOUT_MS = 2_000;
// What recovery may take: the heartbeat timeout, three 1 s probes of the dead server, one relay
// attempt (the 5 s fallback timeout), and 2 s of slack. A figure for `npm run faults`, not an assertion.
const RECOVERY_BOUND_MS = HEARTBEAT_TIMEOUT_MS + 3_000 + 5_000 + 2_000;
const stops: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
});

describe('coturn killed under relay-only peers', () => {
  it('the pair heals through the second TURN server and carries signed pings again', async () => {
    const sig: RunningSignaling = await startSignaling();
    stops.push(() => sig.stop());
    const t1: RunningTurnserver = await startCoturn();
    stops.push(() => t1.stop());
    const t2: RunningTurnserver = await startCoturn();
    stops.push(() => t2.stop());
    const agent = (id: string) => {
      const a = new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: [sig.url],
        iceServers: [
          { urls: t1.stunUrl },
          ...[t1, t2].map((t) => ({ urls: t.url, username: 'ifmesh', credential: 'test-pass' })),
        ],
        iceTransportPolicy: 'relay',
        loopbackOnly: true,
        heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
        healingBaseMs: 250,
      });
      stops.push(() => a.stop());
      a.start();
      return a;
    };
    const a = agent('turn-a');
    await waitFor(() => a.signalingUrl !== undefined, 'turn-a to register');
    const b = agent('turn-b');
    await b.waitForPeers(['turn-a'], 30_000);
    // The offering side's link names the TURN server the pair relays through (the newcomer offers
    // first; in healing, the smaller id).
    const relayOf = () => a.links.get('turn-b')?.turnServer ?? b.links.get('turn-a')?.turnServer;
    const before = a.links.get('turn-b')!;
    // Whichever server the pool chose (lowest latency) is the one killed.
    const [dead, spare] = relayOf() === t1.url ? [t1, t2] : [t2, t1];
    expect(relayOf()).toBe(dead.url);
    expect(Number.isFinite(await before.ping())).toBe(true);

    const killedAt = Date.now();
    const exited = new Promise((r) => dead.child.once('exit', r));
    dead.child.kill('SIGKILL');
    await exited;
    // Healed: a new link, relayed by coturn-2, whose signed pong comes back.
    let healedMs = Number.NaN;
    let server: string | undefined;
    await waitFor(
      async () => {
        const l = a.links.get('turn-b');
        if (!l || l === before || !l.ready) return false;
        const rtt = await l.ping().catch(() => Number.NaN);
        if (!Number.isFinite(rtt)) return false;
        healedMs = Date.now() - killedAt;
        server = relayOf();
        return true;
      },
      'the pair to heal through the other coturn',
      { timeoutMs: 60_000, intervalMs: 200 },
    ).catch(() => {});
    const candidate = b.links.get('turn-a')
      ? (await b.links.get('turn-a')!.stats()).candidateType
      : undefined;
    recordFigure({
      fault: 'coturn kill -9 under relay-only peers',
      trials: 1,
      expected: `the pair heals through the other TURN server within ${RECOVERY_BOUND_MS / 1000} s`,
      observed: Number.isFinite(healedMs)
        ? `healed through ${server === spare.url ? 'the other coturn' : server} (${candidate}) ${(healedMs / 1000).toFixed(1)} s after the kill`
        : 'did not heal within 60 s',
      figure: Number.isFinite(healedMs) ? `${(healedMs / 1000).toFixed(1)} s to recover` : 'not recovered',
      ok: healedMs <= RECOVERY_BOUND_MS && server === spare.url && candidate === 'relay',
    });
    expect(Number.isFinite(healedMs)).toBe(true);
    expect(server).toBe(spare.url);
    expect(candidate).toBe('relay');
  }, 120_000);
});
