// `ifmesh maintenance daily|weekly|install-cron` run as cron runs them: the built binary with no
// terminal, PATH=/usr/bin:/bin and no HOME, against a real witness, a real signaling instance and
// logrotate. Two runs at once: a gate in front of the witness holds the first run inside its lock
// while the second starts, so the overlap is certain, not a matter of timing.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { BIN, type RunResult, tempDir, testTmp } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { type RunningSignaling, startSignaling, TestClient } from '../helpers/signaling.js';
import { makeCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

const ESC = String.fromCharCode(27);
let witness: RunningWitness;
let sig: RunningSignaling;

/** A pass-through proxy to the witness that holds requests to `held` paths until `open()`. */
class Gate {
  readonly seen: string[] = [];
  private waiting: (() => void)[] = [];
  private closed = true;
  server = http.createServer(async (req, res) => {
    this.seen.push(req.url ?? '');
    if (this.closed && this.held.some((h) => req.url?.startsWith(h)))
      await new Promise<void>((r) => this.waiting.push(r));
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const up = await fetch(`${witness.url}${req.url}`, {
      method: req.method,
      headers: { 'content-type': 'application/json', authorization: String(req.headers.authorization ?? '') },
      ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    res.writeHead(up.status, { 'content-type': 'application/json' });
    res.end(await up.text());
  });
  constructor(private readonly held: string[]) {}
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }
  open(): void {
    this.closed = false;
    for (const w of this.waiting.splice(0)) w();
  }
  close(): Promise<void> {
    this.open();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** The built binary as cron runs it: no TTY (pipes), PATH=/usr/bin:/bin, no HOME. */
function cron(args: string[], cwd: string, env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { PATH: '/usr/bin:/bin', ...testTmp(), ...env }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
    trackPid(child.pid);
  });
}

let dir: { dir: string; cleanup: () => void };
let state: string;
beforeAll(async () => {
  requireBinary('/usr/sbin/logrotate', 'logrotate');
  witness = await startWitness();
  sig = await startSignaling();
});
afterAll(async () => {
  await sig?.stop();
  await witness?.stop();
});
beforeEach(() => {
  dir = tempDir();
  state = path.join(dir.dir, 'state');
  mkdirSync(path.join(state, 'logs'), { recursive: true });
  writeFileSync(path.join(state, 'logs', 'signaling-1.log'), 'x'.repeat(4096));
});
afterEach(() => dir.cleanup());

const env = (witnessUrl = witness.url) => ({
  IF_WITNESS_ENDPOINT: witnessUrl,
  IF_WITNESS_API_KEY: API_KEY,
  IFMESH_SIGNALING_URL: sig.url,
});

describe('maintenance daily', () => {
  it('under cron: rotates the logs, cleans the witness, writes the health report, no colour, exit 0', async () => {
    const c = makeCert(dir.dir, 'server', 90);
    const r = await cron(
      ['maintenance', 'daily', '--state-dir', state, '--cert', c.cert, '--key', c.key],
      dir.dir,
      env(),
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toContain(ESC);
    expect(r.stderr).not.toContain(ESC);
    expect(r.stdout).toContain('daily maintenance complete');
    // logrotate (copytruncate) moved the content aside and left the live file empty
    const logs = readdirSync(path.join(state, 'logs'));
    expect(logs).toContain('signaling-1.log.1');
    expect(statSync(path.join(state, 'logs', 'signaling-1.log')).size).toBe(0);
    expect(readFileSync(path.join(state, 'logrotate.conf'), 'utf8')).toContain(
      `${path.join(state, 'logs')}/*.log {`,
    );
    const reports = readdirSync(path.join(state, 'reports'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatch(/^daily-health-\d{8}\.json$/);
    const health = JSON.parse(readFileSync(path.join(state, 'reports', reports[0]!), 'utf8'));
    expect(Object.keys(health).sort()).toEqual(
      [
        'active_connections',
        'certificate_days_left',
        'error_count_24h',
        'maintenance_id',
        'timestamp',
        'total_agents',
      ].sort(),
    );
    expect(health.certificate_days_left).toBeGreaterThanOrEqual(88);
    expect(health.total_agents).toBe(0);
    const pruned = (await post(`${witness.url}/api/query`, { query: { event: 'witness_events_pruned' } }))
      .json.results;
    expect(pruned.at(-1).metadata.retain_days).toBe(30);
  });

  it('--dry-run changes nothing: logs untouched, no cleanup, no report', async () => {
    const before = (await post(`${witness.url}/api/query`, { query: { event: 'witness_events_pruned' } }))
      .json.results.length;
    const r = await cron(
      ['maintenance', 'daily', '--state-dir', state, '--dry-run', '--json'],
      dir.dir,
      env(),
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ dry_run: true, ok: true, logrotate: { ok: true } });
    expect(doc.logs).toEqual([{ file: 'signaling-1.log', bytes: 4096 }]);
    expect(readdirSync(path.join(state, 'logs'))).toEqual(['signaling-1.log']);
    expect(statSync(path.join(state, 'logs', 'signaling-1.log')).size).toBe(4096);
    expect(existsSync(path.join(state, 'reports'))).toBe(false);
    expect(existsSync(path.join(state, 'logrotate.conf'))).toBe(false);
    const after = (await post(`${witness.url}/api/query`, { query: { event: 'witness_events_pruned' } })).json
      .results;
    expect(after).toHaveLength(before);
  });

  it('a certificate expiring in 3 days needs a person: exit 1 naming it, the report still written', async () => {
    const c = makeCert(dir.dir, 'soon', 3);
    const r = await cron(
      ['maintenance', 'daily', '--state-dir', state, '--cert', c.cert, '--json'],
      dir.dir,
      env(),
    );
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.needs_human.join('\n')).toContain(`certificate ${c.cert}: expires in`);
    expect(existsSync(doc.report_file)).toBe(true);
  });

  it('twice at once: the second exits 75 at once naming the holder; the first completes', async () => {
    const gate = new Gate(['/api/admin/cleanup']);
    const url = await gate.listen();
    try {
      const first = cron(['maintenance', 'daily', '--state-dir', state], dir.dir, env(url));
      await waitFor(
        () => gate.seen.includes('/api/admin/cleanup'),
        'the first run to reach the witness cleanup',
        {
          timeoutMs: 60_000,
        },
      );
      const holder = JSON.parse(readFileSync(path.join(state, 'maintenance.lock'), 'utf8'));
      const second = await cron(['maintenance', 'daily', '--state-dir', state], dir.dir, env(url));
      expect(second.code).toBe(75);
      expect(second.stderr).toContain(`the maintenance lock is held by pid ${holder.pid} (maintenance daily`);
      gate.open();
      const r = await first;
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(path.join(state, 'maintenance.lock'))).toBe(false);
    } finally {
      await gate.close();
    }
  });
});

describe('maintenance weekly', () => {
  it('twice at once under cron: the second exits 75; the first reports integration, latency, security, capacity', async () => {
    const gate = new Gate(['/api/query']);
    const url = await gate.listen();
    try {
      const args = [
        'maintenance',
        'weekly',
        '--state-dir',
        state,
        '--loopback',
        '--messages',
        '5',
        '--max-agents',
        '50',
        '--json',
      ];
      const first = cron(args, dir.dir, env(url));
      await waitFor(() => gate.seen.includes('/api/query'), 'the first run to query the witness', {
        timeoutMs: 90_000,
      });
      const second = await cron(args, dir.dir, env(url));
      expect(second.code).toBe(75);
      expect(JSON.parse(second.stdout).error.code).toBe('locked');
      gate.open();
      const r = await first;
      const doc = JSON.parse(r.stdout);
      expect(r.code, JSON.stringify(doc.needs_human)).toBe(0);
      expect(doc.integration).toMatchObject({ ok: true, agents: 3, pairs: 3 });
      expect(doc.latency[0]).toMatchObject({ source: 'metrics' });
      expect(doc.security_events_7d).toBe(0);
      expect(doc.capacity).toMatchObject({ instances_up: 1, max_agents: 50 });
      expect(doc.capacity.headroom_ratio).toBeGreaterThan(0.5);
      expect(existsSync(doc.report_file)).toBe(true);
    } finally {
      await gate.close();
    }
  });

  it('an agent held against a limit of one leaves no headroom: exit 1 naming capacity', async () => {
    const held = new TestClient(sig.url);
    try {
      await held.register('held-1');
      const r = await cron(
        [
          'maintenance',
          'weekly',
          '--state-dir',
          state,
          '--loopback',
          '--messages',
          '2',
          '--max-agents',
          '1',
          '--json',
        ],
        dir.dir,
        env(),
      );
      expect(r.code).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc.capacity).toMatchObject({ agents: 1, max_agents: 1, headroom_ratio: 0 });
      expect(doc.needs_human.join('\n')).toContain('capacity: 1 agents of 1');
    } finally {
      held.ws.close();
    }
  });
});

describe('maintenance install-cron', () => {
  it('prints the lines; --write installs them, and the daily line runs as cron would run it', async () => {
    const cronFile = path.join(dir.dir, 'cron.d', 'ifmesh');
    const shown = await cron(
      ['maintenance', 'install-cron', '--state-dir', state, '--cron-file', cronFile],
      dir.dir,
    );
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^0 0 \* \* \* \S+ cd .* maintenance daily --state-dir /m);
    expect(shown.stdout).toMatch(/^0 0 \* \* 0 \S+ cd .* maintenance weekly --state-dir /m);
    expect(existsSync(cronFile)).toBe(false);
    const written = await cron(
      ['maintenance', 'install-cron', '--state-dir', state, '--cron-file', cronFile, '--write'],
      dir.dir,
    );
    expect(written.code).toBe(0);
    const line = readFileSync(cronFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0 0 * * * '))!;
    // minute hour dom month dow user command: run the command with cron's environment
    const command = line.split(' ').slice(6).join(' ');
    const ran = await new Promise<number>((resolve) => {
      const child = execFile(
        '/bin/sh',
        ['-c', command],
        {
          env: { PATH: '/usr/bin:/bin', SHELL: '/bin/sh', ...testTmp(), ...env() },
          timeout: 120_000,
        },
        (e) => resolve(e ? (typeof e.code === 'number' ? e.code : 1) : 0),
      );
      trackPid(child.pid);
    });
    const log = readFileSync(path.join(state, 'logs', 'maintenance.log'), 'utf8');
    expect(ran, log).toBe(0);
    expect(log).toContain('daily maintenance complete');
    expect(readdirSync(path.join(state, 'reports'))[0]).toMatch(/^daily-health-\d{8}\.json$/);
  });
});
