// `ifmesh certs rotate` on a real pair of TLS signaling processes with real werift agents: the old
// files are backed up, a new certificate is served, and the instances restart one at a time, so at
// every moment some instance is healthy and the agents end up registered again.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { Supervisor } from '../../src/ops/fleet/supervisor.js';
import { signalingServeArgs } from '../../src/ops/shared.js';
import { freePort } from '../../src/ops/stack/stack.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { BIN, run, tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { makeCert, servedFingerprint } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

const insecure = new Agent({ connect: { rejectUnauthorized: false } });
let dir: { dir: string; cleanup: () => void };
let witness: RunningWitness;
let files: { cert: string; key: string };
let sup: Supervisor;
const ports: number[] = [];
let plainPid: number;
const agents: MeshAgent[] = [];
const env = () => ({ IF_WITNESS_ENDPOINT: witness.url, IF_WITNESS_API_KEY: API_KEY });

async function healthy(port: number): Promise<boolean> {
  try {
    const r = await request(`https://127.0.0.1:${port}/health`, {
      dispatcher: insecure,
      headersTimeout: 1_000,
      bodyTimeout: 1_000,
    });
    await r.body.text();
    return r.statusCode === 200;
  } catch {
    return false;
  }
}

async function registered(): Promise<string[]> {
  const ids = new Set<string>();
  for (const port of ports) {
    try {
      const r = await request(`https://127.0.0.1:${port}/agents`, {
        dispatcher: insecure,
        headersTimeout: 1_000,
      });
      for (const a of ((await r.body.json()) as { agents: { agent_id: string }[] }).agents)
        ids.add(a.agent_id);
    } catch {
      // restarting
    }
  }
  return [...ids].sort();
}

beforeAll(async () => {
  dir = tempDir();
  witness = await startWitness();
  files = makeCert(dir.dir, 'server', 2);
  copyFileSync(files.key, path.join(dir.dir, 'server.key.orig'));
  sup = new Supervisor(openStateDir(dir.dir), { clock: systemClock, owner: 'up' });
  for (const name of ['sig-1', 'sig-2']) {
    const port = await freePort();
    ports.push(port);
    const pid = sup.start({
      name,
      role: 'signaling',
      port,
      url: `wss://127.0.0.1:${port}`,
      command: process.execPath,
      args: [
        ...signalingServeArgs(BIN, { port, instanceId: name, state: openStateDir(dir.dir) }),
        '--tls-cert',
        files.cert,
        '--tls-key',
        files.key,
      ],
      env: env(),
      cwd: dir.dir,
    });
    trackPid(pid);
  }
  // An instance started without the certificate: a rotation must leave it alone.
  const plainPort = await freePort();
  plainPid = sup.start({
    name: 'sig-plain',
    role: 'signaling',
    port: plainPort,
    url: `ws://127.0.0.1:${plainPort}`,
    command: process.execPath,
    args: [
      BIN,
      'signaling',
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(plainPort),
      '--state-dir',
      dir.dir,
    ],
    env: env(),
    cwd: dir.dir,
  });
  trackPid(plainPid);
  for (const port of ports) await waitFor(() => healthy(port), `signaling on ${port}`, { timeoutMs: 20_000 });
  for (const id of ['cr-1', 'cr-2']) {
    const a = new MeshAgent({
      agentId: id,
      identity: generateKeyPair(),
      signalingUrls: ports.map((p) => `wss://127.0.0.1:${p}`),
      iceServers: [],
      loopbackOnly: true,
      rejectUnauthorized: false,
    });
    agents.push(a);
    a.start();
  }
  await agents[0]!.waitForPeers(['cr-2'], 20_000);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  if (dir) {
    const real = new Supervisor(openStateDir(dir.dir), {
      clock: (await import('../../src/util/clock.js')).systemClock,
      owner: 'test',
    });
    for (const rec of listProcesses(openStateDir(dir.dir))) await real.stop(rec.name, 3_000);
  }
  await witness?.stop();
  await insecure.close();
  dir?.cleanup();
});

describe('certs rotate', () => {
  it('--dry-run shows backups and the one-at-a-time restart order, and changes nothing', async () => {
    const before = readFileSync(files.cert, 'utf8');
    const r = await run(
      ['certs', 'rotate', '--cert', files.cert, '--key', files.key, '--self-signed-dev', '--dry-run'],
      {
        cwd: dir.dir,
        env: { ...env(), IFMESH_STATE_DIR: dir.dir },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1\. restart sig-1 .*\n.*2\. restart sig-2/);
    expect(r.stdout).toContain('left alone (not started with this certificate): sig-plain');
    expect(readFileSync(files.cert, 'utf8')).toBe(before);
  });

  it('--self-signed-dev on a fleet that verifies against its own CA: exit 2 before anything, dry run too', async () => {
    // The fleet's CA file is another file than the certificate (a private CA's, here a copy).
    const ca = path.join(dir.dir, 'fleet-ca.pem');
    writeFileSync(ca, readFileSync(files.cert));
    const before = readFileSync(files.cert, 'utf8');
    for (const extra of [['--dry-run'], ['--force']]) {
      const r = await run(
        ['certs', 'rotate', '--cert', files.cert, '--key', files.key, '--self-signed-dev', ...extra],
        { cwd: dir.dir, env: { ...env(), IFMESH_STATE_DIR: dir.dir, IFMESH_CA_FILE: ca } },
      );
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(
        `error: --self-signed-dev is refused: the fleet verifies its instances against ${ca}`,
      );
    }
    expect(readFileSync(files.cert, 'utf8')).toBe(before);
  });

  it('a certificate copied in place that the fleet CA did not issue: exit 1 before any restart, dry run too', async () => {
    const ca = path.join(dir.dir, 'fleet-ca.pem');
    writeFileSync(ca, readFileSync(files.cert));
    const before = readFileSync(files.cert);
    const { mtime } = statSync(files.cert);
    const intruder = makeCert(dir.dir, 'intruder', 30, 'IP:127.0.0.1');
    const pids = ['sig-1', 'sig-2'].map((n) => sup.running(n));
    // The manual procedure's step 2 with the wrong pair: the instances now hold an older one.
    writeFileSync(files.cert, readFileSync(intruder.cert));
    writeFileSync(files.key, readFileSync(intruder.key));
    try {
      for (const extra of [['--dry-run'], []]) {
        const r = await run(['certs', 'rotate', '--cert', files.cert, '--key', files.key, ...extra], {
          cwd: dir.dir,
          env: { ...env(), IFMESH_STATE_DIR: dir.dir, IFMESH_CA_FILE: ca },
        });
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain(
          `error: refusing to restart sig-1, sig-2 onto ${files.cert}: not issued by ${ca}`,
        );
      }
      expect(['sig-1', 'sig-2'].map((n) => sup.running(n))).toEqual(pids);
    } finally {
      writeFileSync(files.cert, before);
      writeFileSync(files.key, readFileSync(path.join(dir.dir, 'server.key.orig')));
      utimesSync(files.cert, mtime, mtime);
    }
  });

  it('without certbot or --self-signed-dev: exit 1 with the manual procedure, nothing touched', async () => {
    const before = readFileSync(files.cert, 'utf8');
    const r = await run(
      ['certs', 'rotate', '--cert', files.cert, '--key', files.key, '--state-dir', dir.dir],
      {
        cwd: dir.dir,
        env: env(),
      },
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('certbot is not installed');
    expect(r.stdout).toContain(`cp NEW.crt ${files.cert}`);
    // its last step is a command, not "restart them"
    expect(r.stdout).toContain(
      `4. restart the instances serving it, one at a time: ifmesh certs rotate --cert ${files.cert} --key ${files.key}`,
    );
    expect(readFileSync(files.cert, 'utf8')).toBe(before);
  });

  it('--self-signed-dev: backs up, serves the new certificate, restarts one at a time, agents come back', async () => {
    const oldCert = readFileSync(files.cert, 'utf8');
    const oldPids = listProcesses(openStateDir(dir.dir)).map((p) => p.pid);
    const samples: { healthy: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const h = await Promise.all(ports.map(healthy));
        samples.push({ healthy: h.filter(Boolean).length });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const r = await run(
      [
        'certs',
        'rotate',
        '--cert',
        files.cert,
        '--key',
        files.key,
        '--self-signed-dev',
        '--state-dir',
        dir.dir,
        '--json',
      ],
      { cwd: dir.dir, env: env() },
    );
    sampling = false;
    await sampler;
    for (const p of listProcesses(openStateDir(dir.dir))) trackPid(p.pid);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.restarts.map((x: { name: string; healthy: boolean }) => [x.name, x.healthy])).toEqual([
      ['sig-1', true],
      ['sig-2', true],
    ]);
    for (const x of doc.restarts) expect(oldPids).not.toContain(x.new_pid);
    expect(doc.plan.not_restarted).toEqual(['sig-plain']);
    expect(listProcesses(openStateDir(dir.dir)).find((p) => p.name === 'sig-plain')?.pid).toBe(plainPid);
    // Never both down at once: every look found at least one healthy instance.
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.filter((s) => s.healthy === 0)).toEqual([]);
    // The old files are kept, the new certificate is what both instances serve.
    for (const b of doc.plan.backups) expect(existsSync(b.to)).toBe(true);
    expect(readFileSync(doc.plan.backups[0].to, 'utf8')).toBe(oldCert);
    const fresh = new X509Certificate(readFileSync(files.cert));
    expect(fresh.checkPrivateKey(createPrivateKey(readFileSync(files.key)))).toBe(true);
    for (const port of ports) expect(await servedFingerprint(port)).toBe(fresh.fingerprint256);
    await waitFor(async () => (await registered()).join() === 'cr-1,cr-2', 'both agents registered again', {
      timeoutMs: 20_000,
    });
    const check = await run(['certs', 'check', '--cert', files.cert, '--key', files.key, '--json'], {
      cwd: dir.dir,
    });
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout).days_left).toBeGreaterThanOrEqual(29);
    const logged = (await post(`${witness.url}/api/query`, { query: { event: 'tls_certificate_rotated' } }))
      .json.results;
    expect(logged).toHaveLength(1);
    expect(logged[0].metadata).toMatchObject({
      old_expiry: doc.plan.old_expiry,
      new_expiry: doc.new_expiry,
      restarted: ['sig-1', 'sig-2'],
      status: 'completed',
    });
  });
});
