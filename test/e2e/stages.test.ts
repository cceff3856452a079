// Issue 19, point 3, on real processes: two stages from one project directory, each from its own env
// file (its ports, its witness) into its own state directory. Staging is a plain loopback mesh;
// production runs in production mode (--stage production implies it), so its env file is a complete
// production configuration: TLS signaling behind TLS nginx, a witness over https (a TLS proxy in this
// process in front of a real witness), an admin token, an allow-list and TURN credentials. The
// runbook's flow: canary in staging, promoted; then canary that release into production, accepted;
// a release staging did not promote is refused, and taken with --force.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { writeAgentConfigs } from '../helpers/deploy.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { makeCa, makeServerCert } from '../helpers/tls.js';
import { API_KEY, type RunningWitness, startWitness } from '../helpers/witness.js';

const { dir, cleanup } = tempDir();
const root = path.join(dir, 'state');
const AGENTS = ['agent-s1', 'agent-s2', 'agent-s3'];
// As in the rollout tests: the RTT gate depends on this machine's load, and a passing window must be
// long enough for the pairs to connect.
const RTT_BUDGET = ['--threshold', 'rtt_p2p_p95_ms=10000'];
const WINDOW = ['--monitor', '10s', '--interval', '500ms'];
/** A canary meant to pass: the canary agent, then all; analysed over WINDOW. */
const PASSING = ['--steps', '1,100%', ...WINDOW, ...RTT_BUDGET];
const ports = { staging: 0, production: 0, stagingNginx: 0, productionNginx: 0 };
let turn: RunningTurnserver;
const witnesses: RunningWitness[] = [];
let proxy: https.Server | undefined;

/** An https front for the witness at `target`, as production puts one: TLS ends here. */
async function tlsProxy(target: string, cert: { cert: string; key: string }): Promise<string> {
  const up = new URL(target);
  proxy = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (req, res) => {
    const fwd = http.request(
      { host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  requireBinary('nginx', 'nginx');
  requireBinary('redis-server', 'redis-server');
  turn = await startCoturn('prod-user', 'prod-pass');
  witnesses.push(await startWitness(), await startWitness());
  const [stagingWitness, productionWitness] = witnesses as [RunningWitness, RunningWitness];
  const certs = path.join(dir, 'certs');
  mkdirSync(certs);
  const ca = makeCa(certs);
  const server = makeServerCert(certs, ca, 'signaling', ['localhost', '127.0.0.1']);
  const witnessUrl = await tlsProxy(productionWitness.url, server);
  await writeAgentConfigs(dir, AGENTS);
  const allow = AGENTS.map((id) => {
    const pub = JSON.parse(readFileSync(path.join(dir, `keys/${id}.pub`), 'utf8')).public_key;
    return `${pub} ${id}`;
  });
  writeFileSync(path.join(dir, 'allow-keys'), `${allow.join('\n')}\n`);
  // deploy puts Redis (when installed) on the port after the instance's
  ports.staging = await freePortRange(2);
  ports.production = await freePortRange(2);
  ports.stagingNginx = await freePort();
  ports.productionNginx = await freePort();
  const stun = turn.stunUrl;
  const turnPort = /:(\d+)$/.exec(stun)![1];
  const write = (stage: string, lines: string[]) =>
    writeFileSync(path.join(dir, `config/webrtc-${stage}.env`), `${lines.join('\n')}\n`);
  write('staging', [
    'SIGNALING_HOST=127.0.0.1',
    `SIGNALING_PORT=${ports.staging}`,
    `STUN_SERVERS=${stun}`,
    `IF_WITNESS_ENDPOINT=${stagingWitness.url}`,
    `IF_WITNESS_API_KEY=${API_KEY}`,
  ]);
  write('production', [
    'SIGNALING_HOST=127.0.0.1',
    `SIGNALING_PORT=${ports.production}`,
    'SIGNALING_TLS_CERT=../certs/signaling.crt',
    'SIGNALING_TLS_KEY=../certs/signaling.key',
    'IFMESH_CA_FILE=../certs/ifmesh-test-ca.crt',
    `SIGNALING_PUBLIC_URL=wss://localhost:${ports.productionNginx}`,
    `STUN_SERVERS=${stun}`,
    `TURN_SERVERS=turn:127.0.0.1:${turnPort}?transport=udp`,
    'TURN_USERNAME=prod-user',
    'TURN_PASSWORD=prod-pass',
    `IF_WITNESS_ENDPOINT=${witnessUrl}`,
    `IF_WITNESS_API_KEY=${API_KEY}`,
    'SIGNALING_ADMIN_TOKEN=stage-test-admin-token-0123456789',
    'SIGNALING_ALLOW_KEYS=../allow-keys',
  ]);
}, 60_000);

afterAll(async () => {
  for (const stage of ['staging', 'production'])
    await spawnCli(['down', '--stage', stage, '--state-dir', root], { cwd: dir, timeoutMs: 60_000 });
  await new Promise((r) => (proxy ? proxy.close(r) : r(undefined)));
  for (const w of witnesses) await w.stop();
  await turn?.stop();
  cleanup();
});

const env = { IFMESH_OPERATOR: 'tester' };
const cli = (args: string[], timeoutMs = 120_000) =>
  spawnCli([...args, '--state-dir', root], { cwd: dir, env, timeoutMs });
const json = async (args: string[], timeoutMs?: number) => {
  const r = await cli([...args, '--json'], timeoutMs);
  return { ...r, out: r.stdout ? JSON.parse(r.stdout) : undefined };
};

describe('stages are environments', () => {
  it('staging then production: separate fleets and state, the staging-promoted release accepted, another refused', async () => {
    // Two fleets, each on its env file's ports, each recorded in its own state directory.
    for (const stage of ['staging', 'production'] as const) {
      const nginx = stage === 'staging' ? ports.stagingNginx : ports.productionNginx;
      const d = await json(
        ['deploy', '--stage', stage, '--instances', '1', '--nginx-port', String(nginx), '--label', 'v1'],
        90_000,
      );
      expect(d.code, d.stderr).toBe(0);
      expect(d.out.registered).toEqual(AGENTS);
      const scheme = stage === 'staging' ? 'ws' : 'wss';
      expect(d.out.plan.instances.map((i: { url: string }) => i.url)).toEqual([
        `${scheme}://127.0.0.1:${ports[stage]}`,
      ]);
      expect(d.out.release_file).toContain(path.join(root, 'stages', stage, 'releases'));
    }
    const fleet = async (stage: string) => {
      const st = await json(['status', '--stage', stage]);
      expect(st.code, st.stderr).toBe(0);
      expect(st.out.state_dir).toBe(path.join(root, 'stages', stage));
      return st.out.components as { name: string; pid: number; url: string | null; healthy: boolean }[];
    };
    const [stg, prod] = [await fleet('staging'), await fleet('production')];
    expect(stg.find((c) => c.name === 'deploy-signaling-1')?.url).toBe(`ws://127.0.0.1:${ports.staging}`);
    expect(prod.find((c) => c.name === 'deploy-signaling-1')?.url).toBe(
      `wss://127.0.0.1:${ports.production}`,
    );
    expect([...stg, ...prod].filter((c) => !c.healthy)).toEqual([]);
    const pids = new Set([...stg, ...prod].map((c) => c.pid));
    expect(pids.size).toBe(stg.length + prod.length);
    // Production is in production mode, its services too: a production rule broken is refused there
    // (and not in staging), and signaling runs with PRODUCTION_MODE=true.
    for (const stage of ['production', 'staging']) {
      const lax = await cli(['deploy', '--stage', stage, '--set', 'SIGNALING_ADMIN_TOKEN=', '--dry-run']);
      expect(lax.code, `${stage}: ${lax.stderr}`).toBe(stage === 'production' ? 2 : 0);
      if (stage === 'production') expect(lax.stderr).toContain('production rule "admin token"');
    }
    const sig = prod.find((c) => c.name === 'deploy-signaling-1')!;
    expect(readFileSync(`/proc/${sig.pid}/environ`, 'utf8').split('\0')).toContain('PRODUCTION_MODE=true');
    // The unnamed environment has nothing: stages never touch the root's own state.
    expect((await json(['status'])).out.exists).toBe(false);

    // Staging: canary v2 with a change, analysed on staging's witness, promoted.
    const s = await json([
      'canary',
      '--stage',
      'staging',
      ...PASSING,
      '--label',
      'v2',
      '--set',
      'TURN_FALLBACK_TIMEOUT_MS=4000',
    ]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.out.state.status).toBe('completed');
    expect(s.out.plan).toMatchObject({ stage: 'staging', promotion: null });
    const promoted = s.out.plan.canary_id as string;

    // Production: a release staging did not promote (v3) is refused before anything moves.
    const before = await fleet('production');
    const refused = await cli(['canary', '--stage', 'production', '--label', 'v3', ...WINDOW, ...RTT_BUDGET]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      new RegExp(
        `^error: release v3 did not pass staging: staging promoted ${promoted} \\(v2\\), but ref v3 is not v2\\nhint: .*--force promotes it anyway\\n$`,
      ),
    );
    expect((await fleet('production')).map((c) => c.pid)).toEqual(before.map((c) => c.pid));
    // … and taken with --force (planned: the check is the same in a dry run).
    const forced = await json(['canary', '--stage', 'production', '--label', 'v3', '--force', '--dry-run']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.out.plan.promotion).toMatchObject({ requires: 'staging', passed_as: null, forced: true });

    // The staging-promoted release, by its id: production canaries v2 with staging's change, promoted.
    const p = await json(['canary', '--stage', 'production', '--release', promoted, ...PASSING]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.out.state.status).toBe('completed');
    expect(p.out.plan).toMatchObject({
      stage: 'production',
      candidate: { ref: 'v2', changes: { TURN_FALLBACK_TIMEOUT_MS: '4000' } },
      promotion: { requires: 'staging', passed_as: promoted, forced: false },
    });

    // Each stage's own history and canary.
    const history = async (stage: string) =>
      (await json(['releases', '--stage', stage])).out.releases.map(
        (r: { id: string; ref: string; outcome: string }) => [r.ref, r.outcome],
      );
    expect(await history('staging')).toEqual([
      ['v2', 'promoted'],
      ['v1', 'deployed'],
    ]);
    expect(await history('production')).toEqual([
      ['v2', 'promoted'],
      ['v1', 'deployed'],
    ]);
    const cs = await json(['canary', 'status', '--stage', 'production']);
    expect(cs.out).toMatchObject({ status: 'completed', plan: { canary_id: p.out.plan.canary_id } });
    // A rollback plan in production goes back to production's v1, not staging's.
    const rb = await json(['rollback', '--stage', 'production', '--dry-run']);
    expect(rb.code, rb.stderr).toBe(0);
    const prodV1 = (await json(['releases', '--stage', 'production'])).out.releases[1].id;
    expect(rb.out.plan).toMatchObject({ from: { id: p.out.plan.canary_id }, to: { id: prodV1, ref: 'v1' } });
  }, 300_000);
});
