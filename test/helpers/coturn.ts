import { type RunningTurnserver, startTurnserver } from '../../src/exec/turnserver.js';
import { requireBinary } from './binaries.js';
import { trackPid } from './pids.js';
import { freePort } from './processes.js';

let nextRelay = 49_160 + (process.pid % 50) * 200;

/** A real coturn on loopback (STUN and TURN, static user), stopped by pid when the test ends. */
export async function startCoturn(
  user = 'ifmesh',
  password = 'test-pass',
  extra: { staleNonceSeconds?: number } = {},
): Promise<RunningTurnserver> {
  requireBinary('turnserver', 'coturn');
  const port = await freePort();
  const relay: [number, number] = [nextRelay, nextRelay + 99];
  nextRelay += 100;
  const turn = await startTurnserver({
    port,
    relayPorts: relay,
    user,
    password,
    allowLoopbackPeers: true,
    ...extra,
  });
  trackPid(turn.pid);
  return turn;
}
