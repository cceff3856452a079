// The agent's own log (its stderr, a deployed agent's <state>/logs/deploy-agent-<id>.log): one
// timestamped line per lifecycle event, repeats sampled. Before it, a deploy-made agent's log held
// only "1 agent(s) registered with …" and a probe pointed at a closed port printed nothing: every
// failure was a witness event only. Real signaling, nginx, TLS and werift agents on loopback.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { createSigner, generateKeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import { BIN, run, tempDir, testTmp } from '../helpers/cli.js';
import { startNginx } from '../helpers/mesh.js';
import { trackPid } from '../helpers/pids.js';
import { freePort } from '../helpers/processes.js';
import { ADMIN, postJson, startSignaling } from '../helpers/signaling.js';
import { makeCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const TIME = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A MeshAgent on loopback whose log lines are kept; stopped after the test. */
function loggingAgent(
  id: string,
  urls: string[],
  extra: Partial<ConstructorParameters<typeof MeshAgent>[0]> = {},
) {
  const lines: string[] = [];
  const agent = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: urls,
    iceServers: [],
    loopbackOnly: true,
    failoverTimeoutMs: 2_000,
    log: (l) => lines.push(l),
    ...extra,
  });
  cleanups.push(() => agent.stop());
  agent.start();
  return { agent, lines };
}

describe('agent log: signaling', () => {
  it('an agent process pointed at a closed port says so at once: the URL, the reason, the retry', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    await run(['keys', 'generate', '--agent', 'probe', '--out', 'keys'], { cwd: dir });
    const url = `ws://127.0.0.1:${await freePort()}`;
    const child: ChildProcess = spawn(
      process.execPath,
      [
        BIN,
        'agent',
        'run',
        '--id',
        'probe',
        '--key',
        path.join(dir, 'keys/probe.key'),
        '--signaling',
        url,
        '--stun',
        `stun:127.0.0.1:${await freePort()}`,
        '--turn',
        `turn:127.0.0.1:${await freePort()}?transport=udp`,
        '--turn-user',
        'drill',
        '--turn-pass',
        'turn-secret-0451',
        '--loopback',
        '--state-dir',
        path.join(dir, 'state'),
      ],
      { cwd: dir, env: { PATH: process.env.PATH ?? '', ...testTmp() }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    trackPid(child.pid);
    const exited = new Promise((r) => child.once('exit', r));
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      out += d;
    });
    const line = new RegExp(
      `^${TIME} warn probe: signaling ${esc(url)} is unreachable: connect ECONNREFUSED [^;]+; retrying in 1 s \\(attempt 1\\)$`,
      'm',
    );
    await waitFor(() => line.test(out), `the refused connection in the agent's output:\n${out}`);
    expect(out).not.toContain('turn-secret-0451');
    const key = readFileSync(path.join(dir, 'keys/probe.key'), 'utf8');
    for (const secret of key.match(/[A-Za-z0-9_-]{40,}/g) ?? []) expect(out).not.toContain(secret);
  });

  it('nginx answering 502: one line names it, and a reconnect loop writes only the 1st, 2nd, 4th … attempt', async () => {
    const nginx = await startNginx([await freePort()]);
    cleanups.push(() => nginx.stop());
    const { agent, lines } = loggingAgent('behind-nginx', [nginx.url], {
      backoffBaseMs: 5,
      backoffMaxMs: 10,
    });
    const retries = () => lines.filter((l) => l.includes('retrying in'));
    await waitFor(() => retries().some((l) => l.includes('(attempt 32)')), 'the 32nd attempt to be logged', {
      timeoutMs: 30_000,
    });
    await agent.stop();
    expect(retries()[0]).toMatch(
      new RegExp(
        `^${TIME} warn behind-nginx: signaling ${esc(nginx.url)} refused the upgrade: 502; retrying in 5 ms \\(attempt 1\\)$`,
      ),
    );
    // 32 and more attempts, 6 lines: 1, 2, 4, 8, 16, 32 (the 64th did not come before the stop)
    const attempts = retries().map((l) => Number(/\(attempt (\d+)\)/.exec(l)![1]));
    expect(attempts.slice(0, 6)).toEqual([1, 2, 4, 8, 16, 32]);
    expect(attempts.every((n) => (n & (n - 1)) === 0)).toBe(true);
    expect(lines.length).toBe(retries().length);
  });

  it('a TLS certificate it cannot verify is named as such', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const cert = makeCert(dir, 'signaling', 2, 'IP:127.0.0.1');
    const server = createHttpsServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    cleanups.push(() => server.closeAllConnections());
    const url = `wss://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { lines } = loggingAgent('tls-probe', [url], { backoffBaseMs: 50, backoffMaxMs: 100 });
    await waitFor(() => lines.length > 0, 'a line about the TLS failure');
    expect(lines[0]).toMatch(
      new RegExp(
        `^${TIME} warn tls-probe: signaling ${esc(url)} presented a TLS certificate this agent cannot verify: self-signed certificate .*retrying in 50 ms \\(attempt 1\\)$`,
      ),
    );
  });

  it('blocked: the close and each refusal say so, sampled; unblocked: it says it re-registered', async () => {
    const sig = await startSignaling();
    cleanups.push(() => sig.stop());
    const { agent, lines } = loggingAgent('mallory', [sig.url], { backoffBaseMs: 20, backoffMaxMs: 40 });
    await waitFor(() => agent.signalingUrl !== undefined, 'mallory to register');
    expect(lines).toEqual([
      expect.stringMatching(`^${TIME} info mallory: registered with signaling ${esc(sig.url)}$`),
    ]);

    const r = await postJson(`${sig.http}/admin/block`, { agent_id: 'mallory', reason: 'drill' }, ADMIN);
    expect(r.status).toBe(200);
    await waitFor(() => lines.some((l) => l.includes('(attempt 8)')), 'eight refused registrations');
    const blocked = 'blocked by an operator \\(4401\\): mallory is blocked \\(drill\\)';
    expect(lines[1]).toMatch(
      new RegExp(
        `^${TIME} error mallory: signaling ${esc(sig.url)} closed the connection: ${blocked}; reconnecting$`,
      ),
    );
    expect(lines[2]).toMatch(
      new RegExp(
        `^${TIME} error mallory: signaling ${esc(sig.url)} refused the registration: ${blocked}; an operator can lift it with \`ifmesh agents unblock mallory\`; retrying in 20 ms \\(attempt 1\\)$`,
      ),
    );
    expect(lines.slice(2).map((l) => /\(attempt (\d+)\)/.exec(l)?.[1])).toEqual(['1', '2', '4', '8']);

    const res = await fetch(`${sig.http}/admin/block?agent_id=mallory`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(res.status).toBe(200);
    await waitFor(() => lines.some((l) => l.includes('re-registered')), 'the re-registration');
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^${TIME} info mallory: re-registered with signaling ${esc(sig.url)} after \\d+ failed attempts$`,
      ),
    );
  });
});

describe('agent log: peer links', () => {
  it('says when a link comes up, closes and heals, and samples a flood of bad signatures', async () => {
    const sig = await startSignaling();
    cleanups.push(() => sig.stop());
    const quick = { healingBaseMs: 100, heartbeatTimeoutMs: 3_000 };
    const a = loggingAgent('log-a', [sig.url], quick);
    const b = loggingAgent('log-b', [sig.url], quick);
    await a.agent.waitForPeers(['log-b'], 20_000);
    await b.agent.waitForPeers(['log-a'], 20_000);
    await waitFor(() => a.lines.some((l) => l.includes('link to log-b up')), "log-a's line for the link");
    expect(a.lines.find((l) => l.includes('link to log-b up'))).toMatch(
      new RegExp(`^${TIME} info log-a: link to log-b up over a host candidate$`),
    );

    // 100 messages signed by a key that is not log-b's: 7 lines (1st, 2nd, 4th … 64th), not 100
    const forger = createSigner(generateKeyPair().seed);
    const dc = b.agent.links.get('log-a')!.dc!;
    for (let i = 0; i < 100; i++)
      dc.send(
        JSON.stringify(
          signMessage(
            buildMessage({ from: 'log-b', to: 'log-a', type: 'note', payload: { i } }, Date.now()),
            forger,
          ),
        ),
      );
    await waitFor(() => a.agent.counters.signature_failures === 100, 'all 100 forged messages refused');
    const refused = a.lines.filter((l) => l.includes('refused a message from log-b'));
    expect(refused.map((l) => /\((\d+) times so far\)$/.exec(l)?.[1] ?? '1')).toEqual([
      '1',
      '2',
      '4',
      '8',
      '16',
      '32',
      '64',
    ]);
    expect(refused[0]).toMatch(new RegExp(`^${TIME} warn log-a: refused a message from log-b: \\w+: .+$`));

    // the transport under log-b's link dies without a bye: log-a says so, heals, and says that too
    await b.agent.links.get('log-a')!.pc!.close();
    await waitFor(
      () => a.lines.some((l) => l.includes('partition healed')),
      `log-a to heal the link:\n${a.lines.join('\n')}`,
      { timeoutMs: 30_000 },
    );
    const after = a.lines.slice(a.lines.indexOf(refused.at(-1)!) + 1);
    // the channel's close, or (if it never arrives) the heartbeat's partition
    expect(after[0]).toMatch(
      new RegExp(
        `^${TIME} warn log-a: link to log-b (closed: (connection|channel) \\w+|silent for .*: partition detected)$`,
      ),
    );
    expect(after.some((l) => l.includes('healing the link to log-b'))).toBe(true);
    expect(after.at(-1)).toMatch(
      new RegExp(
        `^${TIME} info log-a: link to log-b up over a host candidate, partition healed( \\(2 times so far\\))?$`,
      ),
    );

    // log-b leaves: its bye is an info line at log-a. It goes on the channel and through signaling,
    // and whichever arrives first closes the link (under load, signaling's did).
    await b.agent.stop();
    await waitFor(() => a.lines.some((l) => l.includes('peer said bye')), 'the bye');
    expect(a.lines.at(-1)).toMatch(
      new RegExp(
        `^${TIME} info log-a: link to log-b closed: peer said bye(: agent stopping| through signaling)$`,
      ),
    );
  });
});
