// coturn dies during failover A (issue 23.2). Two relay-only werift agents meet through coturn 1,
// which is SIGKILLed (the failure scenario A recovers from); `ifmesh failover turn` tests coturn 2
// with a real Allocate, writes TURN_SERVERS, pushes it and asks the relayed peers to reconnect — and
// coturn 2, the replacement, is SIGKILLed right after its test passed. The failover must not wait
// out its whole timeout for peers that cannot come: it asks the replacement again while it waits,
// ends failed (exit 1) naming the replacement as dead, and its trail ends failover_completed ok=false.
// With coturn 2 back on its address, the same command run again moves the peers onto it: the pair
// relays through it and a signed ping crosses. Figure: the outcome, events lost (the failover's
// trail: every step reported is stored, and its ending; must be 0), the time from the kill to the
// run's verdict, and from the replacement's return to a completed run with the pair relayed.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { WitnessClient } from '../../src/clients/witness.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { type RunningTurnserver, startTurnserver } from '../../src/exec/turnserver.js';
import { BIN, stateDir, tempDir, testTmp } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { trackPid } from '../helpers/pids.js';
import { freePort } from '../helpers/processes.js';
import { ADMIN, getJson, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, startWitness } from '../helpers/witness.js';
import { withFigure } from './figures.js';
import { seconds } from './fleet-fixture.js';

const stops: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
});

/** A coturn on a port of the test's choosing, so it can come back on the same address. */
async function coturnOn(port: number, relay: number): Promise<RunningTurnserver> {
  const t = await startTurnserver({
    port,
    relayPorts: [relay, relay + 49],
    user: 'ifmesh',
    password: 'test-pass',
    allowLoopbackPeers: true,
  });
  trackPid(t.pid);
  stops.push(() => t.stop());
  return t;
}

/** `ifmesh failover turn … --json` as a child process, its stderr watched. */
function failoverTurn(args: string[], env: Record<string, string>, cwd: string) {
  const child = spawn(process.execPath, [BIN, 'failover', 'turn', ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...testTmp(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackPid(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
  stops.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  /** Its ending, within `ms` (else it is killed and the test fails with what it printed). */
  const done = async (ms = 120_000) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`failover turn did not end within ${ms / 1000} s:\n${stderr}`));
      }, ms);
    });
    try {
      return await Promise.race([exited, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  return { done, stderr: () => stderr };
}

describe('coturn killed during failover A', () => {
  it(
    'the replacement dies mid-failover: it ends failed naming it, without waiting out its timeout; back, a re-run relays the pair through it',
    () =>
      withFigure(
        {
          fault: 'replacement coturn kill -9 during failover A',
          trials: 1,
          expected:
            'failover exit 1 naming the dead replacement (not its 10 min timeout), trail ends ok=false; replacement back: re-run completes, pair relayed through it',
        },
        async () => {
          const dir = tempDir();
          stops.push(async () => dir.cleanup());
          const witness = await startWitness();
          stops.push(() => witness.stop());
          const sig = await startSignaling({ instanceId: 'sig-fa' });
          stops.push(() => sig.stop());
          const t1 = await startCoturn();
          stops.push(() => t1.stop());
          const port2 = await freePort();
          const relay2 = 48_000 + (process.pid % 40) * 50;
          let t2 = await coturnOn(port2, relay2);
          const agents: MeshAgent[] = [];
          const relayAgent = (id: string) => {
            const events = new WitnessClient({
              url: witness.url,
              apiKey: API_KEY,
              producer: id,
              spoolDir: path.join(dir.dir, 'spool'),
            });
            stops.push(() => events.close(2_000));
            const a = new MeshAgent({
              agentId: id,
              identity: generateKeyPair(),
              signalingUrls: [sig.url],
              iceServers: [{ urls: t1.url, username: 'ifmesh', credential: 'test-pass' }],
              iceTransportPolicy: 'relay',
              loopbackOnly: true,
              healingBaseMs: 250,
              events,
            });
            agents.push(a);
            stops.push(() => a.stop());
            a.start();
            return a;
          };
          const a = relayAgent('fa-1');
          await waitFor(() => a.signalingUrl !== undefined, 'fa-1 registered');
          const b = relayAgent('fa-2');
          await b.waitForPeers(['fa-1'], 20_000);
          await waitFor(
            async () =>
              (await getJson(`${sig.http}/connections`)).json.connections.some(
                (c: { candidate_type: string }) => c.candidate_type === 'relay',
              ),
            'a relay connection reported to signaling',
          );
          // Scenario A's own failure: coturn 1 dies.
          process.kill(t1.pid, 'SIGKILL');

          const envFile = path.join(dir.dir, 'webrtc-production.env');
          writeFileSync(envFile, `TURN_SERVERS=${t1.url}\nTURN_USERNAME=ifmesh\nTURN_PASSWORD=test-pass\n`, {
            mode: 0o600,
          });
          const env = {
            SIGNALING_ADMIN_TOKEN: ADMIN,
            IF_WITNESS_ENDPOINT: witness.url,
            IF_WITNESS_API_KEY: API_KEY,
            IFMESH_STATE_DIR: stateDir(dir.dir),
          };
          const args = [
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
            '--loopback',
            '--messages',
            '5',
            // Far beyond the test's own limit: the run must end on the dead replacement, not on this.
            '--timeout',
            '10m',
            '--json',
          ];
          const run = failoverTurn(args, env, dir.dir);
          await waitFor(() => /✓ test the replacement/.test(run.stderr()), 'the replacement tested', {
            timeoutMs: 30_000,
            intervalMs: 10,
          });
          process.kill(t2.pid, 'SIGKILL');
          const killed = Date.now();
          const r = await run.done();
          const verdictMs = Date.now() - killed;
          expect(r.code, r.stderr).toBe(1);
          const doc = JSON.parse(r.stdout);
          const peers = doc.report.steps.find((s: { step: string }) => s.step === 'peers on the replacement');
          expect(peers.ok).toBe(false);
          expect(peers.detail).toMatch(/it stopped serving during the failover .*run this failover again/);
          const q = async (query: Record<string, unknown>) =>
            (await post(`${witness.url}/api/query`, { query, limit: 1000 })).json.results as {
              event: string;
              metadata?: Record<string, unknown>;
            }[];
          const trail = async (id: string, steps: number) => {
            const events = await q({ failover_id: id });
            expect(events.filter((e) => e.event === 'failover_step')).toHaveLength(steps);
            return events;
          };
          const first = await trail(doc.report.failover_id, doc.report.steps.length);
          expect(first.find((e) => e.event === 'failover_completed')?.metadata?.ok).toBe(false);

          // The replacement back on its address; the same failover run again.
          t2 = await coturnOn(port2, relay2);
          const back = Date.now();
          const again = await failoverTurn(
            args.map((a) => (a === '10m' ? '60s' : a)),
            env,
            dir.dir,
          ).done();
          expect(again.code, again.stderr).toBe(0);
          const doc2 = JSON.parse(again.stdout);
          const second = await trail(doc2.report.failover_id, doc2.report.steps.length);
          expect(second.find((e) => e.event === 'failover_completed')?.metadata?.ok).toBe(true);
          // The pair relays through the replacement, and a signed ping crosses it.
          await waitFor(
            () => a.links.get('fa-2')?.turnServer === t2.url && a.links.get('fa-2')?.ready === true,
            'fa-1 relayed through coturn 2',
            { timeoutMs: 60_000, intervalMs: 100 },
          );
          expect(Number.isFinite(await a.links.get('fa-2')!.ping())).toBe(true);
          const convergedMs = Date.now() - back;
          return {
            observed: `failed naming the dead replacement after ${seconds(verdictMs)} (timeout 10 min); re-run completed (${doc2.report.turn.nothing_to_move ? 'peers healed by themselves' : `${doc2.report.turn.reconnected.length} peer(s) moved`}), pair relayed through it; trails ${first.length}+${second.length} events, 0 lost`,
            figure: `0 lost, verdict ${seconds(verdictMs)}, converged ${seconds(convergedMs)}`,
          };
        },
      ),
    240_000,
  );
});
