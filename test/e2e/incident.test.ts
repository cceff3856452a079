// incident p1/p2/security against real things: a signaling process recorded in the state directory
// and killed with SIGKILL, a real witness, a real `ifmesh deploy` refused while the incident is open.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/cli/context.js';
import { Supervisor } from '../../src/ops/fleet/supervisor.js';
import { signalingServeArgs } from '../../src/ops/shared.js';
import { acquireLock } from '../../src/state/lock.js';
import { readProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { BIN, run, spawnCli, stateDir, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { receiver } from '../helpers/notify-receivers.js';
import { trackPid } from '../helpers/pids.js';
import { freePort } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis.js';
import { connect, getJson, startSignaling } from '../helpers/signaling.js';
import { makeCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

let dir = '';
let state = '';
let witness: RunningWitness;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeEach(async () => {
  const t = tempDir();
  dir = t.dir;
  state = stateDir(dir);
  witness = await startWitness();
  cleanups.push(t.cleanup, () => witness.stop());
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const env = () => ({ IF_WITNESS_API_KEY: API_KEY });
const query = async (q: Record<string, unknown>) =>
  (await post(`${witness.url}/api/query`, { query: q }, null)).json.results as Record<string, any>[];

/** A signaling instance started the way `up` starts one, so its record is the stack's. */
async function stackSignaling(extra: string[] = []): Promise<{ sup: Supervisor; port: number; pid: number }> {
  const sup = new Supervisor(openStateDir(state), { clock: systemClock, owner: 'up' });
  const port = await freePort();
  const pid = sup.start({
    name: 'signaling-1',
    role: 'signaling',
    port,
    url: `ws://127.0.0.1:${port}`,
    command: process.execPath,
    args: signalingServeArgs(BIN, { port, instanceId: 'signaling-1', state: openStateDir(state) }).concat(
      extra,
    ),
    env: { IF_WITNESS_ENDPOINT: witness.url, IF_WITNESS_API_KEY: API_KEY },
    cwd: state,
  });
  trackPid(pid);
  cleanups.push(async () => {
    const rec = readProcess(openStateDir(state), 'signaling-1');
    if (rec)
      await new Supervisor(openStateDir(state), { clock: systemClock, owner: 'up' }).stop(
        'signaling-1',
        2_000,
      );
  });
  await waitFor(
    async () =>
      (await getJson(`http://127.0.0.1:${port}/health`).catch(() => ({ status: 0 }))).status === 200,
    'signaling up',
    { timeoutMs: 20_000 },
  );
  return { sup, port, pid };
}

/** One agent config for `ifmesh deploy` to validate (it never gets to start it). */
async function agentsDir(): Promise<string> {
  await run(['keys', 'generate', '--agent', 'agent-x', '--out', 'keys'], { cwd: dir });
  mkdirSync(path.join(dir, 'config/agents'), { recursive: true });
  writeFileSync(
    path.join(dir, 'config/agents/agent-x.json'),
    JSON.stringify({ agent_id: 'agent-x', key: '../../keys/agent-x.key', loopback: true }),
  );
  return path.join(dir, 'config/agents');
}

describe('incident p1', () => {
  it('restarts a killed signaling instance, tells the team it recovered, holds the deploy lock until resolved, and writes the report', async () => {
    const turn = await startCoturn();
    cleanups.push(() => turn.stop());
    const deadTurn = `turn:127.0.0.1:${await freePort()}?transport=udp`;
    const hooks = await receiver();
    const notifyEnv = {
      ...env(),
      PAGERDUTY_EVENTS_URL: `${hooks.base}/v2/enqueue`,
      PAGERDUTY_INTEGRATION_KEY: 'pd-key',
      SLACK_WEBHOOK_URL: `${hooks.base}/slack`,
      TURN_SERVERS: `${turn.url},${deadTurn}`,
    };
    const { port, pid } = await stackSignaling();
    process.kill(pid, 'SIGKILL');
    await waitFor(
      () =>
        new Supervisor(openStateDir(state), { clock: systemClock, owner: 'up' }).running('signaling-1') ===
        undefined,
      'the instance to die',
    );

    const r = await run(
      [
        'incident',
        'p1',
        '--investigate',
        '--state-dir',
        state,
        '--signaling',
        `http://127.0.0.1:${port}`,
        '--witness',
        witness.url,
        '--json',
      ],
      { cwd: dir, env: notifyEnv },
    );
    expect(r.stderr).toBe('');
    const rec = JSON.parse(r.stdout);
    const restarted = readProcess(openStateDir(state), 'signaling-1')!;
    trackPid(restarted.pid);
    expect(r.code).toBe(0);
    // Paged at declaration (no flag needed); the restart restored the service, so the team hears of
    // the recovery instead of the runbook's step-5 outage post, and nobody else is paged on schedule.
    expect(hooks.got.map((g) => [g.path, g.body.event_action ?? g.body.text])).toEqual([
      ['/v2/enqueue', 'trigger'],
      ['/slack', '✅ P1 INCIDENT AUTO-RECOVERED: WebRTC Agent Mesh Total Outage'],
    ]);
    expect(hooks.got[1]!.body.channel).toBe('#incident-response');
    expect(hooks.got[1]!.body.attachments[0].fields).toContainEqual({
      title: 'Status',
      value: expect.stringContaining('✓ Signaling server recovered: signaling-1 restarted'),
    });
    expect(rec.auto_recovery).toMatchObject({ restored: true });
    expect(rec.escalation).toMatchObject({
      next: null,
      stopped: expect.stringContaining('service restored by auto-recovery'),
    });
    // The runbook's `ss … 8443|3478`: the fleet's TURN servers, one answering, one not.
    expect(rec.findings.investigation.turn).toEqual([
      expect.objectContaining({ url: turn.url, answering: true, how: 'stun-binding' }),
      expect.objectContaining({ url: deadTurn, answering: false }),
    ]);
    expect(rec.next_steps).toContainEqual(expect.stringContaining('ifmesh incident turn-failure'));
    expect(rec.id).toMatch(/^INC-\d{8}-\d{6}$/);
    expect(rec.severity).toBe('P1');
    expect(rec.actions.map((a: any) => [a.action, a.ok])).toEqual(
      expect.arrayContaining([
        ['deployments_halted', true],
        ['impact_assessed', true],
        ['signaling_server_restarted', true],
        ['signaling_health', true],
        ['investigated', true],
      ]),
    );
    expect(restarted.pid).not.toBe(pid);
    expect(restarted.owner).toBe('up');
    expect((await getJson(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    // Assessed while the instance was down: every instance down is a total outage.
    expect(rec.classification.level).toBe('P1');
    expect(rec.impact.instances).toEqual([{ url: `http://127.0.0.1:${port}`, up: false }]);
    const inv = rec.findings.investigation;
    expect(inv.backends).toEqual([expect.objectContaining({ name: 'witness', healthy: true })]);
    expect(inv.dns).toEqual([{ host: '127.0.0.1', address: '127.0.0.1' }]);
    expect(inv.network).toContainEqual({ name: 'signaling-1', port, listening: true });
    expect(inv.resources.processes).toEqual([
      expect.objectContaining({ name: 'signaling-1', running: true }),
    ]);

    // Every event of the incident carries its id; the recovery is among them.
    const events = await query({ incident_id: rec.id });
    expect(events.map((e) => e.event)).toEqual(
      expect.arrayContaining(['incident_declared', 'incident_impact_assessed', 'incident_auto_recovery']),
    );
    expect(events.find((e) => e.event === 'incident_auto_recovery')).toMatchObject({
      action: 'signaling_server_restarted',
      trace_id: rec.trace_id,
    });

    // deploy refuses while the incident is open, naming how to end it.
    const agents = await agentsDir();
    const refused = await run(
      ['deploy', '--state-dir', state, '--agents-dir', agents, '--witness', witness.url],
      { cwd: dir, env: env() },
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`incident ${rec.id}`);
    expect(refused.stderr).toContain(`ifmesh incident resolve ${rec.id}`);
    await expect(acquireLock(openStateDir(state), 'deploy', 'test')).rejects.toMatchObject({
      code: 'locked',
    });

    const list = JSON.parse(
      (await run(['incident', 'list', '--state-dir', state, '--json'], { cwd: dir })).stdout,
    );
    expect(list.incidents.map((i: any) => [i.id, i.status])).toEqual([[rec.id, 'open']]);

    const resolved = await run(
      ['incident', 'resolve', rec.id, '--state-dir', state, '--witness', witness.url, '--json'],
      { cwd: dir, env: notifyEnv },
    );
    expect(resolved.code).toBe(0);
    expect(hooks.got.slice(2).map((g) => [g.path, g.body.event_action ?? g.body.text])).toEqual([
      ['/v2/enqueue', 'resolve'],
      ['/slack', '✅ P1 INCIDENT RESOLVED: WebRTC Agent Mesh Total Outage'],
    ]);
    expect(hooks.got[2]!.body.dedup_key).toBe(rec.id);
    expect(JSON.parse(resolved.stdout)).toMatchObject({ status: 'resolved', lock_token: null });
    const lock = await acquireLock(openStateDir(state), 'deploy', 'test');
    await lock.release();

    // The report, as JSON and Markdown: timeline from the witness, impact, actions.
    const files = {
      json: openStateDir(state).reportFile(`${rec.id}.json`),
      md: openStateDir(state).reportFile(`${rec.id}.md`),
    };
    expect(existsSync(files.json) && existsSync(files.md)).toBe(true);
    const report = JSON.parse(readFileSync(files.json, 'utf8'));
    expect(report.incident.status).toBe('resolved');
    expect(report.timeline.map((e: any) => e.event)).toEqual(
      expect.arrayContaining(['incident_declared', 'incident_auto_recovery', 'incident_resolved']),
    );
    const md = readFileSync(files.md, 'utf8');
    expect(md).toContain(`# ${rec.id}: WebRTC Agent Mesh - Total Service Outage`);
    expect(md).toMatch(/\| signaling_server_restarted \| yes \| signaling-1: restarted/);
    expect(md).toMatch(/\| incident_auto_recovery \|/);
    expect(md).toContain('- Failed connections (last 5 min): 0');
    expect(md).toMatch(/## Investigation\n\n- resources: load /);
    expect(md).toContain('- backend witness');
    expect(md).toContain(
      `- turn ${turn.url} (udp ${turn.url.split(':')[2]!.split('?')[0]}): answers a STUN Binding`,
    );
    expect(md).toContain(`- turn ${deadTurn} (udp `);
    expect(md).toContain('- Auto-recovery: service restored');
    // Resolved: its own ack and resolve are no longer next steps.
    expect(md).not.toContain(`ifmesh incident resolve ${rec.id}`);
    expect(md).not.toContain(`ifmesh incident ack ${rec.id}`);
  });

  it('a dead instance of a Redis-backed stack comes back into the cluster', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.cleanup());
    const redisUrl = `redis://127.0.0.1:${redis.port}`;
    new Supervisor(openStateDir(state), { clock: systemClock, owner: 'up' }).adopt(
      { name: 'redis', role: 'redis', port: redis.port, url: redisUrl },
      redis.pid,
    );
    const { port, pid } = await stackSignaling(['--cluster', redisUrl]);
    process.kill(pid, 'SIGKILL');
    await waitFor(
      () =>
        new Supervisor(openStateDir(state), { clock: systemClock, owner: 'up' }).running('signaling-1') ===
        undefined,
      'the instance to die',
    );
    const r = await run(
      [
        'incident',
        'p1',
        '--state-dir',
        state,
        '--signaling',
        `http://127.0.0.1:${port}`,
        '--witness',
        witness.url,
        '--json',
      ],
      { cwd: dir, env: env() },
    );
    const restarted = readProcess(openStateDir(state), 'signaling-1')!;
    trackPid(restarted.pid);
    expect(r.code).toBe(0);
    const argv = readFileSync(`/proc/${restarted.pid}/cmdline`, 'utf8').split('\0');
    expect(argv.slice(argv.indexOf('--cluster'), argv.indexOf('--cluster') + 2)).toEqual([
      '--cluster',
      redisUrl,
    ]);
    expect((await getJson(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    await run(['incident', 'resolve', JSON.parse(r.stdout).id, '--state-dir', state], { cwd: dir });
  });

  it('--dry-run prints the plan and touches nothing', async () => {
    const { port, pid } = await stackSignaling();
    process.kill(pid, 'SIGKILL');
    await waitFor(
      () =>
        new Supervisor(openStateDir(state), { clock: systemClock, owner: 'up' }).running('signaling-1') ===
        undefined,
      'the instance to die',
    );
    const r = await run(
      [
        'incident',
        'p1',
        '--dry-run',
        '--state-dir',
        state,
        '--signaling',
        `http://127.0.0.1:${port}`,
        '--json',
      ],
      { cwd: dir },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).steps).toContain('restart dead signaling instances: signaling-1');
    expect(existsSync(openStateDir(state).incidents)).toBe(false);
    expect(existsSync(openStateDir(state).lock('deploy'))).toBe(false);
    expect(
      new Supervisor(openStateDir(state), { clock: systemClock, owner: 'up' }).running('signaling-1'),
    ).toBeUndefined();
  });

  it('an unknown incident id is a usage error (exit 2)', async () => {
    const r = await run(['incident', 'resolve', 'INC-20260101-000000', '--state-dir', state], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no incident INC-20260101-000000');
  });
});

describe('incident p2', () => {
  it('quantifies high-latency and TURN connections and pushes bandwidth adaptation to every instance', async () => {
    const sig = await startSignaling();
    cleanups.push(() => sig.stop());
    // A registered agent, to receive the pushed configuration.
    const agent = await connect(sig.url);
    cleanups.push(() => agent.close());
    await agent.register('a1');
    // One connection failed in the last 5 minutes (as an agent reports it to the witness).
    const failed = {
      event: 'connection_state_changed',
      agent_id: 'a1',
      peer_id: 'a3',
      metadata: { state: 'failed' },
    };
    expect((await post(`${witness.url}/api/log`, failed)).status).toBe(201);
    // Recorded quality reports: two pairs above 500 ms, one of them relayed.
    for (const [agent, peer, rtt, type] of [
      ['a1', 'a2', 800, 'relay'],
      ['a2', 'a3', 650, 'host'],
      ['a1', 'a3', 20, 'host'],
    ] as const)
      expect(
        (
          await post(`${witness.url}/api/log`, {
            event: 'connection_quality_update',
            agent_id: agent,
            peer_id: peer,
            metadata: { roundTripTime: rtt, candidateType: type },
          })
        ).status,
      ).toBe(201);
    // Declared by a process of its own that then exits: the lock outlives it until resolve.
    const r = await spawnCli(
      ['incident', 'p2', '--state-dir', state, '--signaling', sig.http, '--witness', witness.url, '--json'],
      { cwd: dir, env: env() },
    );
    expect(r.code).toBe(0);
    const rec = JSON.parse(r.stdout);
    expect(rec.impact).toMatchObject({ agents_connected: 1, failed_connections_5m: 1, agents_affected: 2 });
    expect(rec.classification).toMatchObject({
      level: 'P3',
      response_time: '1 hour',
      escalation: 'Team Lead',
    });
    expect(rec.findings.latency).toMatchObject({
      high_latency: { pairs: 2, events_5m: 2 },
      turn: { pairs_5m: 1 },
    });
    expect(rec.findings.bandwidth).toEqual([
      expect.objectContaining({ instance: sig.http, ok: true, pushed: 1 }),
    ]);
    expect((await agent.next('config')).bandwidth).toEqual({
      enableBandwidthAdaptation: true,
      maxBitrateMbps: 1,
    });
    expect((await getJson(`${sig.http}/config`)).json.bandwidth).toEqual({
      enableBandwidthAdaptation: true,
      maxBitrateMbps: 1,
    });
    expect(sig.events.map((e) => e.event)).toContain('bandwidth_config_pushed');
    await expect(acquireLock(openStateDir(state), 'deploy', 'test')).rejects.toMatchObject({
      code: 'locked',
    });

    // Escalated by hand: level 1 pages PagerDuty, level 2 posts to Slack (local receivers standing for them).
    const hooks = await receiver();
    const notifyEnv = {
      ...env(),
      PAGERDUTY_EVENTS_URL: `${hooks.base}/v2/enqueue`,
      PAGERDUTY_INTEGRATION_KEY: 'pd-key',
      SLACK_WEBHOOK_URL: `${hooks.base}/slack`,
    };
    for (const level of [1, 2]) {
      const e = await run(
        ['incident', 'escalate', rec.id, '--state-dir', state, '--witness', witness.url, '--json'],
        {
          cwd: dir,
          env: notifyEnv,
        },
      );
      expect(e.code).toBe(0);
      expect(JSON.parse(e.stdout).escalation_level).toBe(level);
    }
    // By person: level 1 the on-call through PagerDuty, level 2 the lead on Slack.
    expect(hooks.got.map((g) => g.path)).toEqual(['/v2/enqueue', '/slack']);
    expect(hooks.got[1]!.body.text).toBe('@webrtc-oncall P2 INCIDENT: WebRTC Agent Mesh - High Latency');
    const shown = await run(['incident', 'show', rec.id, '--state-dir', state], { cwd: dir });
    expect(shown.stdout).toContain(`P2 INCIDENT ${rec.id}: WebRTC Agent Mesh - High Latency`);
    expect(shown.stdout).toMatch(
      /✓ bandwidth_adaptation_enabled: http:\/\/127\.0\.0\.1:\d+: pushed to 1 agent\(s\)/,
    );
    expect(shown.stdout).toContain('✓ notified slack to L2 Engineering Lead (trigger, level 2)');
    // Declared without a notification channel: paging was off, so nothing is paged on schedule.
    expect(shown.stdout).toContain(
      'paged next: nobody automatically: paging is off: no notification channel is configured',
    );
    expect((await query({ event: 'incident_escalated', incident_id: rec.id })).length).toBe(2);
    // Resolving tells both levels; without their settings it could not, and would say so (exit 1).
    const resolved = await spawnCli(['incident', 'resolve', rec.id, '--state-dir', state, '--json'], {
      cwd: dir,
      env: notifyEnv,
    });
    expect(resolved.code).toBe(0);
    expect(hooks.got.slice(2).map((g) => g.body.event_action ?? g.body.text)).toEqual([
      'resolve',
      '@webrtc-oncall P2 RESOLVED: WebRTC Agent Mesh - High Latency',
    ]);
    // The cap ends with the incident: the setting from before it (none pushed: adaptation off) goes
    // back to the instance and its agents.
    expect((await getJson(`${sig.http}/config`)).json.bandwidth).toEqual({
      enableBandwidthAdaptation: false,
      maxBitrateMbps: null,
    });
    expect((await agent.next('config')).bandwidth).toEqual({
      enableBandwidthAdaptation: false,
      maxBitrateMbps: null,
    });
    expect(JSON.parse(resolved.stdout).actions).toContainEqual(
      expect.objectContaining({ action: 'bandwidth_restored', ok: true }),
    );
    await (await acquireLock(openStateDir(state), 'deploy', 'test')).release();
  });
});

describe('incident security', () => {
  const fail = (agent: string, peer: string) =>
    post(`${witness.url}/api/log`, {
      event: 'signature_verification_failed',
      agent_id: agent,
      peer_id: peer,
      metadata: { reason: 'bad_signature' },
    });
  const security = async () => {
    const r = await run(
      [
        'incident',
        'security',
        '--state-dir',
        state,
        '--signaling',
        `http://127.0.0.1:${await freePort()}`,
        '--witness',
        witness.url,
        '--json',
      ],
      { cwd: dir, env: env() },
    );
    return { code: r.code, rec: JSON.parse(r.stdout) };
  };

  it('on recorded evidence: one failure is watched; a repeat offender is named for blocking; failures across peers are a P1', async () => {
    await fail('a1', 'mallory');
    const once = await security();
    expect(once.rec.tree.root_cause.id).toBe('single_signature_failure');
    expect(once.rec.actions.map((a: any) => a.action)).toContain('watching');
    // The runbook's index: a security breach is a P1 (< 5 min), whatever tree 4 finds.
    expect(once.rec.severity).toBe('P1');
    expect(once.rec.title).toBe('WebRTC Agent Mesh - Security Event');
    await run(['incident', 'resolve', once.rec.id, '--state-dir', state], { cwd: dir });

    await fail('a2', 'mallory');
    await fail('a3', 'mallory');
    const repeat = await security();
    expect(repeat.rec.tree.root_cause.id).toBe('repeated_signature_failures_one_peer');
    expect(repeat.rec.tree.path.map((s: any) => s.answer)).toEqual(['signature', 'one_peer']);
    // No signaling instance answers and there is no admin token: the incident says exactly what to run.
    expect(repeat.rec.actions).toContainEqual(
      expect.objectContaining({ action: 'agent_blocked', ok: false }),
    );
    expect(repeat.code).toBe(1);
    expect(repeat.rec.next_steps).toContainEqual(
      expect.stringMatching(/^ifmesh agents block mallory --reason /),
    );
    await run(['incident', 'resolve', repeat.rec.id, '--state-dir', state], { cwd: dir });

    await fail('a1', 'eve');
    const wide = await security();
    expect(wide.rec.tree.root_cause.id).toBe('signature_failures_across_peers');
    expect(wide.rec.severity).toBe('P1');
    expect(wide.rec.next_steps).toContain(`ifmesh rotate-keys --incident-id ${wide.rec.id}`);
    expect(
      await query({
        event: 'incident_mitigation',
        action: 'key_rotation_required',
        incident_id: wide.rec.id,
      }),
    ).toHaveLength(1);
    await run(['incident', 'resolve', wide.rec.id, '--state-dir', state], { cwd: dir });
  });
});

describe('incident cert-expiry and turn-failure', () => {
  it('cert-expiry checks the certificate with `certs check` and names the rotation to run', async () => {
    const sig = await startSignaling();
    cleanups.push(() => sig.stop());
    const tls = makeCert(dir, 'mesh', 3);
    const r = await run(
      ['incident', 'cert-expiry', '--state-dir', state, '--signaling', sig.http, '--witness', witness.url],
      {
        cwd: dir,
        env: { ...env(), SIGNALING_TLS_CERT: tls.cert, SIGNALING_TLS_KEY: tls.key },
      },
    );
    // expiring within the runbook's 7 days: the check fails, so does the command
    expect(r.code).toBe(1);
    const id = /INCIDENT (INC-\d{8}-\d{6})/.exec(r.stdout)?.[1];
    expect(r.stdout).toContain(`P3 INCIDENT ${id}`);
    expect(r.stdout).toMatch(/✗ certificate_checked: CN=mesh\.test: expiring, [23] days left/);
    expect(r.stdout).toContain(`ifmesh certs rotate --cert ${tls.cert} --key ${tls.key} --dry-run`);
    await expect(acquireLock(openStateDir(state), 'deploy', 'test')).rejects.toMatchObject({
      code: 'locked',
    });
    expect((await run(['incident', 'resolve', id!, '--state-dir', state], { cwd: dir })).code).toBe(0);
  });

  it('turn-failure finds the dead TURN server and names `ifmesh failover turn` with a live replacement', async () => {
    const sig = await startSignaling();
    cleanups.push(() => sig.stop());
    const turn = await startCoturn();
    cleanups.push(() => turn.stop());
    const dead = `turn:127.0.0.1:${await freePort()}?transport=udp`;
    const turnEnv = {
      TURN_SERVERS: `${dead},${turn.url}`,
      TURN_USERNAME: 'ifmesh',
      TURN_PASSWORD: 'test-pass',
    };
    // No witness key: nothing is logged, so nothing waits in a spool either.
    const r = await run(
      ['incident', 'turn-failure', '--state-dir', state, '--signaling', sig.http, '--witness', witness.url],
      { cwd: dir, env: turnEnv },
    );
    expect(r.code).toBe(0);
    const id = /INCIDENT (INC-\d{8}-\d{6})/.exec(r.stdout)?.[1];
    expect(r.stdout).toContain(`P2 INCIDENT ${id}`);
    expect(r.stdout).toMatch(
      /✓ turn_servers_checked: 1\/2 TURN server\(s\) answer: .*NOT answering.*answers a TURN Allocate/,
    );
    expect(r.stdout).toContain('✓ handed_over: the TURN failover is `ifmesh failover turn`');
    expect(r.stdout).not.toContain('not in ifmesh');
    expect(r.stdout).not.toContain('ifmesh up');
    const dryRun = `ifmesh failover turn --failed '${dead}' --replacement '${turn.url}' --state-dir ${state} --dry-run`;
    expect(r.stdout).toContain(dryRun);
    expect(r.stdout).not.toContain('they wait in the spool');
    expect(r.stdout).toContain('no event was logged to the witness: IF_WITNESS_API_KEY is not set');
    await expect(acquireLock(openStateDir(state), 'deploy', 'test')).rejects.toMatchObject({
      code: 'locked',
    });

    // The command named is the real one: its dry run plans the replacement.
    const argv = dryRun
      .replace(/^ifmesh /, '')
      .split(' ')
      .map((a) => a.replace(/^'(.*)'$/, '$1'));
    const plan = await run([...argv, '--signaling', sig.http, '--json'], { cwd: dir, env: turnEnv });
    expect(plan.code).toBe(0);
    expect(JSON.stringify(JSON.parse(plan.stdout))).toContain(turn.url);
    expect((await run(['incident', 'resolve', id!, '--state-dir', state], { cwd: dir })).code).toBe(0);
  });
});

describe('several open incidents', () => {
  it('deployments stay halted until the last one is resolved', async () => {
    const declare = async (kind: string) => {
      const r = await run(
        [
          'incident',
          kind,
          '--state-dir',
          state,
          '--signaling',
          `http://127.0.0.1:${await freePort()}`,
          '--witness',
          witness.url,
          '--json',
        ],
        {
          cwd: dir,
        },
      );
      return JSON.parse(r.stdout);
    };
    const first = await declare('turn-failure');
    const second = await declare('cert-expiry');
    expect(second.actions[0]).toMatchObject({ action: 'deployments_halted', ok: true });
    expect(second.actions[0].detail).toContain(`already halted by incident ${first.id}`);

    const r1 = JSON.parse(
      (await run(['incident', 'resolve', first.id, '--state-dir', state, '--json'], { cwd: dir })).stdout,
    );
    expect(r1.actions.at(-1).detail).toBe(`deploy lock passed to ${second.id}, still open`);
    await expect(acquireLock(openStateDir(state), 'deploy', 'test')).rejects.toThrow(`incident ${second.id}`);
    // status says who holds deploys, and what releases them.
    const st = await run(['status', '--state-dir', state], { cwd: dir, env: { NO_COLOR: '1' } });
    expect(st.stdout + st.stderr).toContain(`is held by incident ${second.id} since`);
    expect(st.stdout + st.stderr).toContain(`ifmesh incident resolve ${second.id}`);
    const held = JSON.parse(
      (await run(['status', '--state-dir', state, '--json'], { cwd: dir })).stdout,
    ).held_locks;
    expect(held).toEqual([
      expect.objectContaining({ purpose: `incident ${second.id}`, persistent: true, corrupt: false }),
    ]);

    await run(['incident', 'resolve', second.id, '--state-dir', state], { cwd: dir });
    await (await acquireLock(openStateDir(state), 'deploy', 'test')).release();
  });
});
