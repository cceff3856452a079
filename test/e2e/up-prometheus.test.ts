import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { alertDefs } from '../../src/ops/monitoring/alerts.js';
import { DEFAULT_THRESHOLDS } from '../../src/ops/monitoring/thresholds.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { promQuery } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

const { dir, cleanup } = tempDir();
const state = path.join(dir, 'stack');
afterAll(async () => {
  await spawnCli(['down', '--state-dir', state], { timeoutMs: 30_000 });
  for (const p of listProcesses(openStateDir(state))) if (isAlive(p.pid)) process.kill(p.pid, 'SIGKILL');
  cleanup();
});

describe('ifmesh up --with-prometheus', () => {
  it('runs Prometheus on loopback with the exported files, shows its URL in status, and down stops it', async () => {
    requireBinary('prometheus', 'prometheus');
    requireBinary('turnserver', 'coturn');
    const up = await spawnCli(
      [
        'up',
        '--max-rtt-p95',
        '10s',
        '--agents',
        '2',
        '--instances',
        '1',
        '--with-prometheus',
        '--state-dir',
        state,
        '--json',
      ],
      { cwd: dir, timeoutMs: 120_000 },
    );
    for (const p of listProcesses(openStateDir(state))) trackPid(p.pid);
    expect(up.code, up.stderr).toBe(0);
    const report = JSON.parse(up.stdout);
    expect(report.started).toContain('prometheus');
    const url = report.endpoints.prometheus as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const st = JSON.parse((await spawnCli(['status', '--state-dir', state, '--json'], { cwd: dir })).stdout);
    expect(st.endpoints.prometheus).toBe(url);
    expect(st.components.find((c: { name: string }) => c.name === 'prometheus')).toMatchObject({
      role: 'prometheus',
      running: true,
      healthy: true,
      url,
    });
    const human = await spawnCli(['status', '--state-dir', state], { cwd: dir });
    expect(human.stdout).toMatch(new RegExp(`prometheus .*${url.replace(/\./g, '\\.')}`));

    // it scrapes the stack's signaling instance and witness, and has loaded the eight rules
    await waitFor(
      async () => {
        const r = await promQuery(url, 'up');
        return r.length === 2 && r.every((x) => x.value[1] === '1');
      },
      'Prometheus to scrape signaling and the witness',
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    const established = await promQuery(url, 'webrtc_connections_established_total');
    expect(Number(established[0]!.value[1])).toBeGreaterThan(0);
    const rules = (await (await fetch(`${url}/api/v1/rules`)).json()) as any;
    expect(rules.data.groups[0].rules).toHaveLength(alertDefs(DEFAULT_THRESHOLDS).length);

    // monitoring check and top find the stack from --state-dir alone
    const check = await spawnCli(
      ['monitoring', 'check', '--state-dir', state, '--json', '--sample-ms', '200'],
      {
        cwd: dir,
      },
    );
    const rows = JSON.parse(check.stdout).rows as { id: string; status: string }[];
    expect(rows.filter((r) => r.id === 'signaling_up').map((r) => r.status)).toEqual(['ok']);
    const top = JSON.parse(
      (await spawnCli(['top', '--state-dir', state, '--json', '--interval', '200'], { cwd: dir })).stdout,
    );
    expect(top.agents.map((a: { agent_id: string }) => a.agent_id)).toEqual(['agent-1', 'agent-2']);

    const pid = listProcesses(openStateDir(state)).find((p) => p.name === 'prometheus')!.pid;
    const down = await spawnCli(['down', '--state-dir', state, '--json'], { cwd: dir, timeoutMs: 60_000 });
    expect(JSON.parse(down.stdout).stopped).toContain('prometheus');
    expect(isAlive(pid)).toBe(false);
  }, 180_000);
});
