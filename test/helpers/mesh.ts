import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { applyNginx, type NginxPlan } from '../../src/exec/nginx.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { systemClock } from '../../src/util/clock.js';
import { systemExec } from '../../src/util/exec.js';
import { trackPid } from './pids.js';
import { freePort } from './processes.js';

export interface RunningNginx {
  url: string;
  http: string;
  stop(): Promise<void>;
}

/** Real nginx (unprivileged, own prefix in a temp dir) on a loopback port in front of `upstreams`. */
export async function startNginx(upstreams: number[], backups: number[] = []): Promise<RunningNginx> {
  const prefix = mkdtempSync(path.join(tmpdir(), 'ifmesh-nginx-'));
  const plan: NginxPlan = { prefix, listenPort: await freePort(), upstreams, backups };
  const pid = await applyNginx(plan, false, { exec: systemExec, clock: systemClock });
  trackPid(pid);
  return {
    url: `ws://127.0.0.1:${plan.listenPort}`,
    http: `http://127.0.0.1:${plan.listenPort}`,
    stop: async () => {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** What the agents of a test logged, to print when a mesh does not form. */
export const agentEvents: (WitnessEvent & { me: string })[] = [];

/** A werift agent gathering loopback only, with its signaling URLs in failover order. */
export function meshAgent(
  id: string,
  signalingUrls: string[],
  stunUrl: string,
  failoverTimeoutMs = 2_000,
): MeshAgent {
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls,
    iceServers: [{ urls: stunUrl }],
    loopbackOnly: true,
    failoverTimeoutMs,
    backoffBaseMs: 100,
    backoffMaxMs: 500,
    statsIntervalMs: 500,
    events: { log: (e) => agentEvents.push({ ...e, me: id }) },
  });
  a.start();
  return a;
}

/** Every agent has a ready, signed channel to every other. */
export async function fullMesh(agents: MeshAgent[], timeoutMs = 30_000): Promise<void> {
  const ids = agents.map((a) => a.id);
  try {
    await Promise.all(
      agents.map((a) =>
        a.waitForPeers(
          ids.filter((i) => i !== a.id),
          timeoutMs,
        ),
      ),
    );
  } catch (err) {
    // Say what the agents that did not link went through, so a failure can be read, not guessed.
    const pair = /(\S+): no ready channel to (.*) within/.exec((err as Error).message);
    const who = pair ? [pair[1]!, ...pair[2]!.split(', ')] : ids;
    const trail = agentEvents
      .filter((e) => who.includes(e.me) && (!e.peer_id || who.includes(String(e.peer_id))))
      .map((e) => `${e.me} ${e.event} ${e.peer_id ?? ''} ${JSON.stringify(e.metadata ?? {}).slice(0, 160)}`);
    throw new Error(`${(err as Error).message}\n${trail.join('\n')}`);
  }
}
