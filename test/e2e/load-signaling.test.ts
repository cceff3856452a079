// `ifmesh load --signaling-only` against a real signaling server on an ephemeral loopback port: the
// agents (in two processes, from two loopback source addresses) register with signed proofs and the
// server holds them, from the addresses asked, in meshes of ten; relayed messages are each
// accounted for. An unreachable server fails with exit 1 naming why; bad flags are usage errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { freePort, type Service, startSignalingProcess } from '../helpers/processes.js';

const { dir, cleanup } = tempDir();
let server: Service;

beforeAll(async () => {
  server = await startSignalingProcess(['--log-level', 'error']);
}, 30_000);
afterAll(async () => {
  await server?.stop();
  cleanup();
}, 30_000);

const load = (args: string[], signaling = server.url) =>
  spawnCli(['load', '--signaling-only', '--signaling', signaling, ...args], { cwd: dir, timeoutMs: 60_000 });

interface Agent {
  agent_id: string;
  host: string;
  mesh: string;
}

describe('ifmesh load --signaling-only', () => {
  it('relays at the rate over every pair in 2 processes and accounts for each message', async () => {
    // The latency budget is loose: this asserts delivery and accounting, not the machine's speed.
    const r = await load([
      ...'--agents 12 --processes 2 --rate 20 --duration 1s --max-rtt-p95 10s --json'.split(' '),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      ok: true,
      mode: 'signaling-only',
      agents: 12,
      processes: 2,
      connected: 12,
      registered: 12,
      pairs: 6,
      rate_per_pair: 20,
      sent: 6 * 20,
      delivered: 6 * 20,
      delivery_ratio: 1,
      disconnected: 0,
      failures: [],
    });
    expect(report.registrations_per_second).toBeGreaterThan(0);
    for (const p of [report.registration_ms, report.relay_ms]) {
      expect(p.p50).toBeGreaterThan(0);
      expect(p.p99).toBeGreaterThanOrEqual(p.p95);
      expect(p.max).toBeGreaterThanOrEqual(p.p99);
    }
    // Progress on stderr while it ran; stdout is the one JSON document.
    expect(r.stderr).toContain('12 of 12 registered in');
    expect(r.stderr).toMatch(/1 s \/ 1 s: \d+ sent/);
  }, 60_000);

  it('holds the agents from the source addresses asked, in meshes of ten, then leaves', async () => {
    let held: Agent[] = [];
    const running = load([
      ...'--agents 20 --processes 2 --rate 0 --duration 3s --source-addresses 127.0.0.2-3'.split(' '),
    ]);
    const deadline = Date.now() + 20_000;
    while (held.length < 20 && Date.now() < deadline) {
      const res = await fetch(`${server.url.replace('ws://', 'http://')}/agents`);
      held = ((await res.json()) as { agents: Agent[] }).agents.filter((a) => a.agent_id.startsWith('load-'));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const r = await running;
    expect(r.code, r.stderr).toBe(0);
    expect(held).toHaveLength(20);
    expect(new Set(held.map((a) => a.host.replace(/^::ffff:/, '').split(':')[0]))).toEqual(
      new Set(['127.0.0.2', '127.0.0.3']),
    );
    expect(new Set(held.map((a) => a.mesh)).size).toBe(2);
    expect(r.stdout).toMatch(
      /✓ signaling load passed: 20 agents in 2 process\(es\) on 1 signaling URL\(s\) from 2 source addresses/,
    );
    expect(r.stdout).toMatch(/registered 20 of 20 in [\d.]+ ms/);
    expect(r.stdout).toContain('held for 3 s, none dropped');
    // Gone once the run ends.
    const after = (await (await fetch(`${server.url.replace('ws://', 'http://')}/agents`)).json()) as {
      agents: Agent[];
    };
    expect(after.agents.filter((a) => held.some((h) => h.agent_id === a.agent_id))).toEqual([]);
  }, 60_000);

  it('fails with exit 1 when no agent can register, naming why', async () => {
    const closed = await freePort();
    const r = await load(['--agents', '4', '--duration', '1s', '--json'], `ws://127.0.0.1:${closed}`);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: false, registered: 0, sent: 0 });
    expect(report.failures[0]).toMatch(/4 of 4 agents not registered: connect: .*ECONNREFUSED/);
  }, 60_000);

  it('refuses malformed flags with exit 2 naming the flag', async () => {
    for (const [flag, value] of [
      ['--rate', '-1'],
      ['--agents', '1'],
      ['--processes', '3'],
      ['--source-addresses', '127.0.0.300'],
      ['--inflight', 'many'],
      ['--duration', '5x'],
    ] as const) {
      const r = await load(['--agents', '4', flag, value]);
      expect(r.code, `${flag} ${value}`).toBe(2);
      expect(r.stderr).toContain(flag);
      expect(r.stderr.trim().split('\n')[0]).toMatch(/^error: /);
    }
    // The signaling-only flags are refused without the mode, not ignored.
    const r = await spawnCli(['load', '--inflight', '8', '--signaling', server.url], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--inflight applies only with --signaling-only');
  }, 60_000);
});
