// `ifmesh load` against a deploy-made fleet: temporary agents in two processes find the fleet's
// signaling instances from its state (not the config's default port), connect over WebRTC and
// exchange signed pings on every pair at the rate, for the duration; the report counts each ping.
// A mesh that cannot form fails with exit 1 naming why; bad flags are usage errors.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { type DeployDeps, deployArgv, startDeployDeps, writeAgentConfigs } from '../helpers/deploy.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';

const { dir, cleanup } = tempDir();
const state = path.join(dir, 'fleet');
let deps: DeployDeps;
let deployed = false;

beforeAll(async () => {
  deps = await startDeployDeps();
  await writeAgentConfigs(dir, ['agent-l1']);
  const base = await freePortRange(2);
  const r = await spawnCli(deployArgv({ instances: 2, base, nginxPort: await freePort(), state }), {
    cwd: dir,
    env: deps.env,
    timeoutMs: 120_000,
  });
  deployed = true;
  expect(r.code, r.stderr).toBe(0);
}, 180_000);
afterAll(async () => {
  if (deployed) await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 60_000 });
  await deps?.stop();
  cleanup();
}, 120_000);

const load = (args: string[]) =>
  spawnCli(['load', '--loopback', '--state-dir', state, ...args], {
    cwd: dir,
    env: deps.env,
    timeoutMs: 120_000,
  });

describe('ifmesh load', () => {
  it('runs 4 agents in 2 processes on the deployed fleet and accounts for every ping of every pair', async () => {
    // The RTT budget is loose: this asserts delivery and accounting, not the machine's speed.
    const r = await load([
      ...'--agents 4 --processes 2 --rate 10 --duration 2s --max-rtt-p95 10s --json'.split(' '),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      ok: true,
      agents: 4,
      processes: 2,
      pairs: 6,
      rate_per_pair: 10,
      sent: 6 * 20,
      delivered: 6 * 20,
      delivery_ratio: 1,
      signature_failures: 0,
      failures: [],
    });
    expect(report.rtt_ms.p50).toBeGreaterThan(0);
    expect(report.rtt_ms.p99).toBeGreaterThanOrEqual(report.rtt_ms.p95);
    // Every pair once, each with its own count and percentiles.
    const pairs = report.per_pair.map((p: { a: string; b: string }) => `${p.a.slice(-1)}-${p.b.slice(-1)}`);
    expect(pairs.sort()).toEqual(['1-2', '1-3', '1-4', '2-3', '2-4', '3-4']);
    for (const p of report.per_pair) expect(p).toMatchObject({ sent: 20, delivered: 20 });
    // Progress on stderr while it ran; stdout is the one JSON document.
    expect(r.stderr).toContain('mesh formed in');
  }, 120_000);

  it('prints a summary and the pairs for people', async () => {
    const r = await load(['--agents', '2', '--rate', '5', '--duration', '1s', '--max-rtt-p95', '10s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✓ load passed: 2 agents in 1 process\(es\), 1 pairs/);
    expect(r.stdout).toMatch(/delivered 5 of 5 \(100\.00 %\), RTT p50 [\d.]+ ms/);
  }, 60_000);

  it('fails with exit 1 when the mesh cannot form, naming why', async () => {
    const closed = await freePort();
    const r = await load([
      ...`--agents 2 --duration 1s --form-timeout 1500ms --signaling ws://127.0.0.1:${closed} --json`.split(
        ' ',
      ),
    ]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(false);
    expect(report.sent).toBe(0);
    expect(report.failures.join('\n')).toMatch(/1 of 1 pairs never ran/);
  }, 60_000);

  it('refuses malformed flags with exit 2 naming the flag', async () => {
    for (const [flag, value] of [
      ['--rate', '0'],
      ['--duration', '5x'],
      ['--agents', '1'],
      ['--min-delivery', '2'],
    ] as const) {
      const r = await load([flag, value]);
      expect(r.code, `${flag} ${value}`).toBe(2);
      expect(r.stderr).toContain(flag);
    }
  }, 60_000);
});
