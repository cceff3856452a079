import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { applyNginx, type NginxPlan } from '../../src/exec/nginx.js';
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
  const pid = await applyNginx(plan, false);
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
  });
  a.start();
  return a;
}

/** Every agent has a ready, signed channel to every other. */
export async function fullMesh(agents: MeshAgent[], timeoutMs = 30_000): Promise<void> {
  const ids = agents.map((a) => a.id);
  await Promise.all(
    agents.map((a) =>
      a.waitForPeers(
        ids.filter((i) => i !== a.id),
        timeoutMs,
      ),
    ),
  );
}
