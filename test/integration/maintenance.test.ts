// `ifmesh maintenance daily|weekly|install-cron` run as cron runs them: the built binary with no
// terminal, PATH=/usr/bin:/bin and no HOME, against a real witness, a real signaling instance and
// logrotate. Two runs at once: a gate in front of the witness holds the first run inside its lock
// while the second starts, so the overlap is certain, not a matter of timing. What needs a person is
// told to local receivers standing for Slack and the mail relay, which check every payload.
import { execFile } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { getGlobalDispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemClock, systemExec } from '../../src/cli/context.js';
import { configuredNotifiers } from '../../src/ops/incident/notify/send.js';
import { writeRotationRecord } from '../../src/ops/keys/schedule.js';
import { runDaily } from '../../src/ops/maintenance/daily.js';
import { recordProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { BIN, type RunResult, run, tempDir, testTmp } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { receiver, smtp } from '../helpers/notify-receivers.js';
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
        'connected_pairs',
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

    // Run again the same day (the notice of a failed run says to): nothing is rotated again, so no
    // day of history is pushed out, and what was logged since stays in the live file.
    appendFileSync(path.join(state, 'logs', 'signaling-1.log'), 'logged after the first run\n');
    const again = await cron(
      ['maintenance', 'daily', '--state-dir', state, '--cert', c.cert, '--key', c.key],
      dir.dir,
      env(),
    );
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(readdirSync(path.join(state, 'logs'))).not.toContain('signaling-1.log.2');
    expect(readdirSync(path.join(state, 'logs'))).not.toContain('signaling-1.log.2.gz');
    expect(readFileSync(path.join(state, 'logs', 'signaling-1.log'), 'utf8')).toBe(
      'logged after the first run\n',
    );
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
    expect(doc).toMatchObject({ dry_run: true, ok: true, logrotate: { ok: true, written: false } });
    expect(doc.logs).toEqual([{ file: 'signaling-1.log', bytes: 4096 }]);
    // The human line does not name the (unwritten) configuration as if logrotate had run on it.
    const human = await cron(['maintenance', 'daily', '--state-dir', state, '--dry-run'], dir.dir, env());
    expect(human.stdout).toContain(
      `3. logrotate: ok (dry run: logrotate -d checked the configuration a real run writes to ${path.join(state, 'logrotate.conf')}; no log was rotated)`,
    );
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
    // No channel configured: said, not silently dropped.
    expect(doc.notice).toMatchObject({ status: 'not_configured', severity: 'P3' });
    expect(doc.notice.hint).toContain('SLACK_WEBHOOK_URL, or SMTP_URL and ALERT_EMAIL');
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
        // The integration check's RTT budget is the runbook's 100 ms by default; this test is about
        // the lock, not the machine's speed, so a busy machine must not fail it (issue 23).
        '--max-rtt-p95',
        '5s',
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

  it('an agent held against MAINTENANCE_MAX_AGENTS=1 leaves no headroom: exit 1, and Slack is told', async () => {
    const sl = await receiver();
    const held = new TestClient(sig.url);
    try {
      await held.register('held-1');
      const r = await cron(
        ['maintenance', 'weekly', '--state-dir', state, '--loopback', '--messages', '2', '--json'],
        dir.dir,
        { ...env(), MAINTENANCE_MAX_AGENTS: '1', SLACK_WEBHOOK_URL: `${sl.base}/slack` },
      );
      expect(r.code).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc.capacity).toMatchObject({ agents: 1, max_agents: 1, headroom_ratio: 0 });
      expect(doc.needs_human.join('\n')).toContain('capacity: 1 agents of 1');
      expect(doc.notice).toMatchObject({ status: 'sent', severity: 'P4' });
      expect(sl.got).toHaveLength(1);
      const body = sl.got[0]!.body;
      expect(body.text).toContain('P4');
      expect(body.text).toContain('ifmesh weekly maintenance needs a person');
      const fields = Object.fromEntries(body.attachments[0].fields.map((f: any) => [f.title, f.value]));
      expect(fields['Incident ID']).toBe(doc.maintenance_id);
      expect(fields.Summary).toContain('capacity: 1 agents of 1');
      expect(fields.Report).toBe(doc.report_file);
    } finally {
      held.ws.close();
    }
  });
});

describe('maintenance install-cron', () => {
  it('prints the lines; --write installs them, and the daily line runs as cron would run it', async () => {
    const cronFile = path.join(dir.dir, 'cron.d', 'ifmesh');
    const tz = ['--timezone', 'Etc/UTC', '--cron', 'debian'];
    const shown = await cron(
      ['maintenance', 'install-cron', '--state-dir', state, '--cron-file', cronFile, ...tz],
      dir.dir,
    );
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^0 0 \* \* \* \S+ cd .* maintenance daily --state-dir /m);
    expect(shown.stdout).toMatch(/^0 0 \* \* 0 \S+ cd .* maintenance weekly --state-dir /m);
    expect(existsSync(cronFile)).toBe(false);
    const written = await cron(
      ['maintenance', 'install-cron', '--state-dir', state, '--cron-file', cronFile, '--write', ...tz],
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

/** The quoted-printable body of a mail as text (soft line breaks joined). */
const mailText = (data: string) => data.replace(/=\r?\n/g, '').replace(/=3D/g, '=');

describe('maintenance tells someone', () => {
  it('daily: a certificate with 3 days left goes to Slack and to ALERT_EMAIL as a P3, naming it', async () => {
    const sl = await receiver();
    const mail = await smtp();
    const c = makeCert(dir.dir, 'soon', 3);
    const r = await cron(
      ['maintenance', 'daily', '--state-dir', state, '--cert', c.cert, '--json'],
      dir.dir,
      {
        ...env(),
        SLACK_WEBHOOK_URL: `${sl.base}/slack`,
        SMTP_URL: mail.url,
        ALERT_EMAIL: 'ops@example.test',
      },
    );
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.notice).toMatchObject({ status: 'sent', severity: 'P3' });
    expect(doc.notice.channels.map((x: any) => [x.channel, x.ok])).toEqual([
      ['slack', true],
      ['email', true],
    ]);
    expect(sl.got).toHaveLength(1);
    const fields = Object.fromEntries(
      sl.got[0]!.body.attachments[0].fields.map((f: any) => [f.title, f.value]),
    );
    expect(sl.got[0]!.body.text).toContain('ifmesh daily maintenance needs a person');
    expect(fields).toMatchObject({
      'Incident ID': doc.maintenance_id,
      Severity: 'P3',
      Report: doc.report_file,
    });
    expect(fields.Summary).toContain(`certificate ${c.cert}: expires in`);
    // The webhook URL is a credential: never in what is posted or printed.
    expect(JSON.stringify(sl.got)).not.toContain(sl.base);
    expect(r.stdout + r.stderr).not.toContain(sl.base);
    expect(mail.mails).toHaveLength(1);
    expect(mail.mails[0]!.to).toEqual(['ops@example.test']);
    const text = mailText(mail.mails[0]!.data);
    expect(text).toContain(`Subject: [P3] ifmesh daily maintenance needs a person (${doc.maintenance_id})`);
    expect(text).toContain('expires in');
  });

  it('Slack failing: retried on the clock, the failure is loud, the mail still goes', async () => {
    const sl = await receiver(() => 500);
    const mail = await smtp();
    const c = makeCert(dir.dir, 'soon', 3);
    const clock = new FakeClock(Date.now());
    const e = {
      ...env(),
      SLACK_WEBHOOK_URL: `${sl.base}/slack`,
      SMTP_URL: mail.url,
      ALERT_EMAIL: 'ops@example.test',
    };
    let finished = false;
    const running = run(['maintenance', 'daily', '--state-dir', state, '--cert', c.cert], {
      cwd: dir.dir,
      env: e,
      clock,
    }).finally(() => {
      finished = true;
    });
    // The backoff between Slack's attempts waits on the injected clock: moved here, not waited for.
    await waitFor(
      async () => {
        await clock.advance(1_000);
        return finished;
      },
      'daily maintenance to finish',
      { timeoutMs: 60_000 },
    );
    const r = await running;
    expect(r.code).toBe(1);
    expect(sl.got).toHaveLength(4);
    expect(mail.mails).toHaveLength(1);
    expect(r.stdout).toContain('told the team (P3): email');
    expect(r.stdout).toMatch(/✗ slack failed after 4 tries \(Slack answered 500/);
  });

  it('with PRODUCTION_MODE=true and no certificate: the configuration refuses, and Slack is told which key', async () => {
    const sl = await receiver();
    const r = await cron(['maintenance', 'daily', '--state-dir', state, '--json'], dir.dir, {
      ...env(),
      PRODUCTION_MODE: 'true',
      TURN_SERVERS: 'turn:127.0.0.1:3478?transport=udp',
      TURN_USERNAME: 'mesh',
      TURN_PASSWORD: 'secret-turn-password',
      SLACK_WEBHOOK_URL: `${sl.base}/slack`,
    });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.code).toBe('config_invalid');
    expect(r.stderr).toContain('told the team (P3): slack');
    expect(sl.got).toHaveLength(1);
    const body = sl.got[0]!.body;
    expect(body.text).toContain('ifmesh daily maintenance could not run: invalid configuration');
    const fields = Object.fromEntries(body.attachments[0].fields.map((f: any) => [f.title, f.value]));
    expect(fields.Summary).toContain('SIGNALING_TLS_CERT: is required when PRODUCTION_MODE=true');
    expect(JSON.stringify(body)).not.toContain('secret-turn-password');
  });

  it('the daily op flags a missing certificate in production, and only there', async () => {
    const sl = await receiver();
    const ctx = {
      clock: systemClock,
      exec: systemExec,
      dispatcher: getGlobalDispatcher(),
      signal: new AbortController().signal,
    };
    const notifiers = configuredNotifiers({
      pagerdutyEventsUrl: '',
      pagerdutyIntegrationKey: '',
      slackWebhookUrl: `${sl.base}/slack`,
      smtpUrl: '',
      alertEmail: '',
    });
    const o = {
      state: openStateDir(state),
      signaling: [sig.http],
      witness: undefined,
      warnDays: 7,
      retainDays: 30,
      notice: { notifiers, notify: true },
    };
    const dev = await runDaily({ ...o, production: false }, ctx);
    expect(dev).toMatchObject({ ok: true, certificate: null, notice: { status: 'not_needed' } });
    const prod = await runDaily({ ...o, production: true }, ctx);
    expect(prod.ok).toBe(false);
    expect(prod.needs_human).toEqual([
      'no TLS certificate configured with PRODUCTION_MODE=true: set SIGNALING_TLS_CERT and SIGNALING_TLS_KEY',
    ]);
    expect(prod.notice).toMatchObject({ status: 'sent', severity: 'P3' });
    expect(sl.got).toHaveLength(1);
  });

  it('daily names recorded processes that are gone, and a dead supervisor with the command that starts it', async () => {
    // A pid that was ours and is gone: a child that exited.
    const gone = await new Promise<number>((resolve) => {
      const c = execFile(process.execPath, ['-e', '0'], () => resolve(c.pid!));
    });
    const at = new Date().toISOString();
    for (const [name, role] of [
      ['deploy-agent-agent-2', 'agents'],
      ['supervisor', 'supervisor'],
    ] as const)
      recordProcess(openStateDir(state), { name, role, pid: gone, owner: 'deploy', started_at: at });
    const r = await cron(['maintenance', 'daily', '--state-dir', state, '--json'], dir.dir, env());
    expect(r.code).toBe(1);
    const needs = JSON.parse(r.stdout).needs_human.join('\n');
    expect(needs).toContain('not running: deploy-agent-agent-2, supervisor');
    expect(needs).toContain(
      `nothing restarts a dead service: ifmesh supervise --detach --state-dir ${state}`,
    );
  });

  it('daily names a periodic key rotation that did not complete, or is overdue', async () => {
    writeRotationRecord(openStateDir(state), {
      at: new Date(Date.now() - 3 * 86_400_000).toISOString(),
      reason: 'scheduled',
      incident_id: null,
      ok: false,
      completed: 2,
      total: 3,
      pending: ['agent-9'],
      not_registered: ['agent-8'],
      failed_connections: 0,
      rotation_ids: ['rot-1'],
    });
    const r = await cron(['maintenance', 'daily', '--state-dir', state, '--json'], dir.dir, env());
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    const needs = doc.needs_human.join('\n');
    expect(needs).toContain(
      `did not complete: 2/4 agents, no answer from agent-9, not registered (old keys kept): agent-8; rotate again once they are back: ifmesh rotate-keys --state-dir ${state}`,
    );
    expect(needs).toContain('periodic key rotation is overdue');
    expect(doc.key_rotation).toMatchObject({ enabled: true, overdue: true, interval_ms: 86_400_000 });
  });
});

describe('maintenance install-cron and configuration', () => {
  it('weekly carries MAINTENANCE_MAX_AGENTS and the env file; the rotation tick is installed; nobody-to-tell is warned', async () => {
    mkdirSync(path.join(dir.dir, 'config'), { recursive: true });
    const envFile = path.join(dir.dir, 'config', 'webrtc-production.env');
    writeFileSync(envFile, 'MAINTENANCE_MAX_AGENTS=250\nSRTP_KEY_ROTATION_INTERVAL_MS=3600000\n');
    const r = await cron(
      [
        'maintenance',
        'install-cron',
        '--state-dir',
        state,
        '--timezone',
        'Etc/UTC',
        '--cron',
        'debian',
        '--json',
      ],
      dir.dir,
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    const weekly = doc.lines.find((l: any) => l.what === 'maintenance weekly');
    expect(weekly.command).toContain(
      `maintenance weekly --state-dir ${state} --config ${envFile} --max-agents 250 >>`,
    );
    expect(doc.lines.find((l: any) => l.what === 'rotate-keys --if-due').schedule).toBe('*/15 * * * *');
    expect(doc.cron_text).toContain("# Times are UTC: this host's timezone is Etc/UTC");
    expect(r.stderr).toContain('what maintenance finds under cron will reach nobody');
  });

  it("refuses a zone with daylight saving under Debian's cron, which ignores CRON_TZ; nothing written", async () => {
    const cronFile = path.join(dir.dir, 'cron.d', 'ifmesh');
    const r = await cron(
      [
        'maintenance',
        'install-cron',
        '--state-dir',
        state,
        '--cron-file',
        cronFile,
        '--write',
        '--timezone',
        'Europe/Paris',
        '--cron',
        'debian',
      ],
      dir.dir,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Europe/Paris');
    expect(r.stderr).toContain("Debian's cron ignores CRON_TZ");
    expect(r.stderr).toContain('timedatectl set-timezone Etc/UTC');
    expect(existsSync(cronFile)).toBe(false);
  });
});
