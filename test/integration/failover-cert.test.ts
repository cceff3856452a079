// `ifmesh failover cert` (scenario D) on two real TLS signaling processes with real werift agents:
// the certificate expiring in 2 days is replaced (self-signed dev renewal), the instances restart one
// at a time and serve the new certificate, every step is logged under the failover id, and the
// recovery validates.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { Supervisor } from '../../src/ops/fleet/supervisor.js';
import { signalingServeArgs } from '../../src/ops/shared.js';
import { freePort } from '../../src/ops/stack/stack.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { BIN, run, tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { makeCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

const insecure = new Agent({ connect: { rejectUnauthorized: false } });
let dir: { dir: string; cleanup: () => void };
let witness: RunningWitness;
let files: { cert: string; key: string };
let sup: Supervisor;
const ports: number[] = [];
const agents: MeshAgent[] = [];

async function healthy(port: number): Promise<boolean> {
  try {
    const r = await request(`https://127.0.0.1:${port}/health`, {
      dispatcher: insecure,
      headersTimeout: 1_000,
    });
    await r.body.text();
    return r.statusCode === 200;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = tempDir();
  witness = await startWitness();
  files = makeCert(dir.dir, 'server', 2);
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
      env: { IF_WITNESS_ENDPOINT: witness.url, IF_WITNESS_API_KEY: API_KEY },
      cwd: dir.dir,
    });
    trackPid(pid);
  }
  for (const port of ports) await waitFor(() => healthy(port), `signaling on ${port}`, { timeoutMs: 20_000 });
  for (const id of ['fc-1', 'fc-2']) {
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
  await agents[0]!.waitForPeers(['fc-2'], 20_000);
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  for (const p of sup?.list() ?? []) await sup.stop(p.name, 5_000);
  await witness?.stop();
  await insecure.close();
  dir?.cleanup();
});

describe('failover cert (scenario D)', () => {
  it('renews the certificate, restarts the instances one at a time, and validates the recovery', async () => {
    const env = {
      IF_WITNESS_ENDPOINT: witness.url,
      IF_WITNESS_API_KEY: API_KEY,
      IFMESH_STATE_DIR: dir.dir,
    };
    const signaling = ports.map((p) => `wss://127.0.0.1:${p}`).join(',');
    const base = [
      'failover',
      'cert',
      // The latency check's budget is not what these tests are about (a loaded machine).
      '--max-rtt-p95',
      '10s',
      '--signaling',
      signaling,
      '--cert',
      files.cert,
      '--key',
      files.key,
      '--self-signed-dev',
    ];
    const before = new X509Certificate(readFileSync(files.cert)).fingerprint256;
    const dry = await run([...base, '--id', 'fo-d-dry', '--dry-run', '--json'], { cwd: dir.dir, env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).plan.cert.restart.map((r: { name: string }) => r.name)).toEqual([
      'sig-1',
      'sig-2',
    ]);
    expect(JSON.parse(dry.stdout).plan.steps).toContain('restart sig-1, sig-2 one at a time');
    expect(new X509Certificate(readFileSync(files.cert)).fingerprint256).toBe(before);

    const r = await run(
      [...base, '--id', 'fo-d-1', '--insecure', '--loopback', '--messages', '5', '--json'],
      {
        cwd: dir.dir,
        env,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(
      doc.report.cert.restarts.map((x: { name: string; healthy: boolean }) => [x.name, x.healthy]),
    ).toEqual([
      ['sig-1', true],
      ['sig-2', true],
    ]);
    for (const x of doc.report.cert.restarts) trackPid(x.new_pid);
    const after = new X509Certificate(readFileSync(files.cert));
    expect(after.fingerprint256).not.toBe(before);
    expect(Date.parse(after.validTo) - Date.now()).toBeGreaterThan(20 * 86_400_000);
    expect(doc.validation.passed, JSON.stringify(doc.validation.checks)).toBe(true);
    const logged = (
      await post(`${witness.url}/api/query`, { query: { failover_id: 'fo-d-1' } })
    ).json.results.map((e: { event: string }) => e.event);
    expect(logged).toEqual(
      expect.arrayContaining([
        'failover_initiated',
        'failover_step',
        'tls_certificate_rotated',
        'failover_recovery_validated',
      ]),
    );
    const certStep = (d: { report: { steps: { step: string; detail: string }[] } }) =>
      d.report.steps.find((x) => x.step === 'certificate rotation')?.detail;
    expect(certStep(doc)).toMatch(/^renewed; expires /);

    // The plan of a run on the fresh certificate says what it will do: no renewal, no restart.
    const fresh = await run([...base, '--id', 'fo-d-dry2', '--dry-run', '--json'], { cwd: dir.dir, env });
    expect(JSON.parse(fresh.stdout).plan.steps.slice(0, 2)).toEqual([
      expect.stringMatching(new RegExp(`^nothing to renew: ${files.cert} is valid \\d+ more days`)),
      'no instance to restart',
    ]);
    // Run again on the fresh certificate: nothing is due, and the step says so instead of "rotated".
    const again = await run(
      [...base, '--id', 'fo-d-2', '--insecure', '--loopback', '--messages', '5', '--json'],
      { cwd: dir.dir, env },
    );
    const second = JSON.parse(again.stdout);
    expect(certStep(second)).toMatch(/^not renewed: valid for \d+ more days/);
    expect(second.report.cert.restarts).toEqual([]);
    expect(new X509Certificate(readFileSync(files.cert)).fingerprint256).toBe(after.fingerprint256);
    expect(again.code, again.stderr).toBe(0);
  }, 120_000);
});
