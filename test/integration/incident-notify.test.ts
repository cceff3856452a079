// Each notifier against a LOCAL receiver that stands for the remote service (PagerDuty's Events API
// v2, a Slack incoming webhook, an SMTP server) and checks what arrives. Nothing leaves loopback.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { getGlobalDispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/cli/context.js';
import { loadConfig } from '../../src/config/load.js';
import { incidentIo } from '../../src/ops/incident/escalation.js';
import { watchIncident } from '../../src/ops/incident/lifecycle.js';
import { configuredNotifiers, sendNotice } from '../../src/ops/incident/notify/send.js';
import type { IncidentNotice } from '../../src/ops/incident/notify/types.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { type RunResult, run, stateDir, tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { receiver, smtp } from '../helpers/notify-receivers.js';
import { freePort, type Service, startSignalingProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const ROUTING_KEY = 'pd-routing-key-secret';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function notice(over: Partial<IncidentNotice> = {}): IncidentNotice {
  return {
    incident_id: 'INC-20260101-000000',
    kind: 'p1',
    severity: 'P1',
    action: 'trigger',
    level: 1,
    title: 'WebRTC Agent Mesh - Total Service Outage',
    summary: 'signaling-1 restarted',
    started_at: '2026-01-01T00:00:00.000Z',
    details: { 'Connected agents': 3 },
    ...over,
  };
}

const io = { clock: systemClock, dispatcher: getGlobalDispatcher() };

describe('notifiers', () => {
  it('PagerDuty Events API v2: trigger, acknowledge and resolve carry the incident id as dedup_key', async () => {
    const pd = await receiver();
    const n = configuredNotifiers({
      pagerdutyEventsUrl: `${pd.base}/v2/enqueue`,
      pagerdutyIntegrationKey: ROUTING_KEY,
      slackWebhookUrl: '',
      smtpUrl: '',
      alertEmail: '',
    });
    expect(Object.keys(n)).toEqual(['pagerduty']);
    for (const action of ['trigger', 'acknowledge', 'resolve'] as const)
      expect((await sendNotice(n.pagerduty!, notice({ action }), io)).ok).toBe(true);
    expect(pd.got.map((g) => g.path)).toEqual(['/v2/enqueue', '/v2/enqueue', '/v2/enqueue']);
    expect(pd.got.map((g) => [g.body.event_action, g.body.dedup_key, g.body.routing_key])).toEqual([
      ['trigger', 'INC-20260101-000000', ROUTING_KEY],
      ['acknowledge', 'INC-20260101-000000', ROUTING_KEY],
      ['resolve', 'INC-20260101-000000', ROUTING_KEY],
    ]);
    expect(pd.got[0]!.body.payload).toMatchObject({
      severity: 'critical',
      source: 'ifmesh',
      timestamp: '2026-01-01T00:00:00.000Z',
      custom_details: { incident_id: 'INC-20260101-000000', 'Connected agents': 3 },
    });
    expect(pd.got[0]!.body.payload.summary).toContain('Total Service Outage');
    expect(pd.got[1]!.body.payload).toBeUndefined();
  });

  it("Slack: the runbook's step-5 post to #incident-response, field for field", async () => {
    const sl = await receiver();
    const n = configuredNotifiers({
      pagerdutyEventsUrl: '',
      pagerdutyIntegrationKey: '',
      slackWebhookUrl: `${sl.base}/slack`,
      smtpUrl: '',
      alertEmail: '',
    });
    const team = {
      ...notice({ level: 0, headline: 'WebRTC Agent Mesh Total Outage', impact: 'Connected agents: 7' }),
      team_channel: '#incident-response',
    };
    expect((await sendNotice(n.slack!, team, io)).ok).toBe(true);
    expect(sl.got[0]!.body).toEqual({
      channel: '#incident-response',
      text: '🚨 P1 INCIDENT: WebRTC Agent Mesh Total Outage',
      attachments: [
        {
          color: 'danger',
          fields: [
            { title: 'Incident ID', value: 'INC-20260101-000000' },
            { title: 'Start Time', value: '2026-01-01T00:00:00.000Z' },
            { title: 'Severity', value: 'P1' },
            { title: 'Impact', value: 'Connected agents: 7' },
          ],
        },
      ],
    });
  });

  it('Slack: a compatible webhook answering 202 or 204 is delivered once, not retried', async () => {
    for (const code of [202, 204]) {
      const sl = await receiver(() => code);
      const n = configuredNotifiers({
        pagerdutyEventsUrl: '',
        pagerdutyIntegrationKey: '',
        slackWebhookUrl: `${sl.base}/slack`,
        smtpUrl: '',
        alertEmail: '',
      });
      expect((await sendNotice(n.slack!, notice(), io)).ok).toBe(true);
      expect(sl.got).toHaveLength(1);
    }
  });

  it('Slack incoming webhook: a page names the level and puts its mention first', async () => {
    const sl = await receiver();
    const n = configuredNotifiers({
      pagerdutyEventsUrl: '',
      pagerdutyIntegrationKey: '',
      slackWebhookUrl: `${sl.base}/slack`,
      smtpUrl: '',
      alertEmail: '',
    });
    const page = notice({ level: 2, for: 'L2 Engineering Lead (Dana)', recipient: '@webrtc-oncall' });
    expect((await sendNotice(n.slack!, page, io)).ok).toBe(true);
    const body = sl.got[0]!.body;
    expect(body.text).toBe('@webrtc-oncall P1 INCIDENT: WebRTC Agent Mesh - Total Service Outage');
    const fields = Object.fromEntries(body.attachments[0].fields.map((f: any) => [f.title, f.value]));
    expect(fields).toMatchObject({
      'Incident ID': 'INC-20260101-000000',
      Severity: 'P1',
      'Escalation level': '2',
      Paged: 'L2 Engineering Lead (Dana)',
    });
    expect(body.attachments[0].color).toBe('danger');
  });

  it('e-mail over SMTP reaches ALERT_EMAIL with the incident in the subject', async () => {
    const mail = await smtp();
    const n = configuredNotifiers({
      pagerdutyEventsUrl: '',
      pagerdutyIntegrationKey: '',
      slackWebhookUrl: '',
      smtpUrl: mail.url,
      alertEmail: 'ops-team@example.com',
    });
    const r = await sendNotice(n.email!, notice({ level: 3 }), io);
    expect(r).toMatchObject({ ok: true, channel: 'email', attempts: 1 });
    expect(mail.mails).toHaveLength(1);
    expect(mail.mails[0]!.to).toEqual(['ops-team@example.com']);
    // Long headers are folded (RFC 5322): unfold before reading the subject.
    expect(mail.mails[0]!.data.replace(/\r?\n[ \t]+/g, ' ')).toContain(
      'Subject: [P1] WebRTC Agent Mesh - Total Service Outage (INC-20260101-000000)',
    );
    expect(mail.mails[0]!.data).toContain('ifmesh incident show INC-20260101-000000');
  });

  it('a failing receiver is retried with backoff on the clock, then reported without the secret', async () => {
    const pd = await receiver((n) => (n < 3 ? 503 : 202));
    const n = configuredNotifiers({
      pagerdutyEventsUrl: `${pd.base}/v2/enqueue`,
      pagerdutyIntegrationKey: ROUTING_KEY,
      slackWebhookUrl: '',
      smtpUrl: '',
      alertEmail: '',
    });
    const clock = new FakeClock();
    const sending = sendNotice(n.pagerduty!, notice(), { clock, dispatcher: getGlobalDispatcher() });
    await waitFor(() => clock.pending === 1, 'the first backoff');
    await clock.advance(1_000);
    await waitFor(() => clock.pending === 1 && pd.got.length === 2, 'the second backoff');
    await clock.advance(2_000);
    expect(await sending).toMatchObject({ ok: true, attempts: 3 });

    const down = await receiver(() => 500);
    const dead = configuredNotifiers({
      pagerdutyEventsUrl: `${down.base}/v2/enqueue`,
      pagerdutyIntegrationKey: ROUTING_KEY,
      slackWebhookUrl: '',
      smtpUrl: '',
      alertEmail: '',
    });
    const failing = sendNotice(dead.pagerduty!, notice(), { clock, dispatcher: getGlobalDispatcher() });
    for (const [i, ms] of [1_000, 2_000, 4_000].entries()) {
      await waitFor(() => clock.pending === 1 && down.got.length === i + 1, `backoff ${i + 1}`);
      await clock.advance(ms);
    }
    const r = await failing;
    expect(r).toMatchObject({ ok: false, attempts: 4 });
    expect(r.error).toContain('PagerDuty answered 500');
    expect(JSON.stringify(r)).not.toContain(ROUTING_KEY);
    expect(down.got).toHaveLength(4);
  });
});

// `ifmesh incident …` in this process on a fake clock, against a real signaling process and local
// receivers standing for PagerDuty, Slack and the mail relay: the escalation schedule is driven by
// separate commands (as cron's `incident due` or an operator's `show` would), never by a process
// held open, and the clock moves only when the test says so.
describe('P1 as written, and escalation by person', () => {
  const ID = 'INC-20260101-000000';
  const T0 = Date.UTC(2026, 0, 1);
  const at = (min: number, s = 0) => new Date(T0 + min * 60_000 + s * 1_000).toISOString();

  async function setup(pd: (n: number) => number = () => 202) {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const sig: Service = await startSignalingProcess();
    cleanups.push(() => sig.stop());
    const hooks = await receiver((n, p) => (p === '/slack' ? 200 : pd(n)));
    const mail = await smtp();
    const clock = new FakeClock(T0);
    const state = stateDir(dir);
    const env = {
      PAGERDUTY_EVENTS_URL: `${hooks.base}/v2/enqueue`,
      PAGERDUTY_INTEGRATION_KEY: ROUTING_KEY,
      SLACK_WEBHOOK_URL: `${hooks.base}/slack`,
      SMTP_URL: mail.url,
      ALERT_EMAIL: 'engineering-vp@example.com',
    };
    const deadWitness = `http://127.0.0.1:${await freePort()}`;
    const flags = ['--state-dir', state, '--signaling', sig.url, '--witness', deadWitness];
    /** One command, as a person or cron would run it; the fake clock is stepped through any backoff. */
    const ifmesh = async (...argv: string[]): Promise<RunResult> => {
      let done = false;
      const p = run([...argv, ...flags], { cwd: dir, env, clock }).finally(() => {
        done = true;
      });
      while (!done) {
        await waitFor(() => done || clock.pending > 0, 'the command to end or to wait on its clock');
        if (!done) await clock.advance(1_000);
      }
      return p;
    };
    const slack = () => hooks.got.filter((g) => g.path === '/slack').map((g) => g.body);
    const pagerduty = () => hooks.got.filter((g) => g.path === '/v2/enqueue').map((g) => g.body);
    return { state, env, clock, ifmesh, slack, pagerduty, mail, deadWitness };
  }

  it('p1 pages on-call at declaration without a flag, posts to #incident-response, and pages L2 and the VP on schedule', async () => {
    const { state, clock, ifmesh, slack, pagerduty, mail, deadWitness } = await setup();
    const r = await ifmesh('incident', 'p1', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rec = JSON.parse(r.stdout);
    expect(rec).toMatchObject({ id: ID, severity: 'P1', notify: true, escalation_level: 1 });
    // The witness these flags name does not answer: the diagnosis says so, not "network".
    const diagnosis = rec.actions.find((a: { action: string }) => a.action === 'diagnosis').detail;
    expect(diagnosis).toContain(
      `the witness (${deadWitness}) does not answer: failed connections are unknown`,
    );
    expect(diagnosis).not.toContain('load balancer');
    // Step 1: PagerDuty Events v2, the incident id as dedup key.
    expect(pagerduty()).toEqual([
      expect.objectContaining({ event_action: 'trigger', dedup_key: ID, routing_key: ROUTING_KEY }),
    ]);
    expect(pagerduty()[0].payload).toMatchObject({
      severity: 'critical',
      custom_details: {
        summary: 'WebRTC mesh signaling server is completely unavailable',
        paged: 'L1 On-Call Engineer (rotation on-call)',
      },
    });
    // Step 5: the signaling server is up (nothing to restart), so the team is engaged in the runbook's words.
    expect(slack()).toEqual([
      {
        channel: '#incident-response',
        text: '🚨 P1 INCIDENT: WebRTC Agent Mesh Total Outage',
        attachments: [
          {
            color: 'danger',
            fields: [
              { title: 'Incident ID', value: ID },
              { title: 'Start Time', value: rec.started_at },
              { title: 'Severity', value: 'P1' },
              { title: 'Impact', value: 'Connected agents: 0' },
            ],
          },
        ],
      },
    ]);
    expect(rec.auto_recovery).toMatchObject({ restored: false });
    // Who is paged next, and when: persisted in the record.
    expect(rec.escalation.next).toEqual({
      level: 2,
      name: 'L2 Engineering Lead',
      via: ['slack @webrtc-oncall'],
      due_at: at(5),
      reason: 'L1 On-Call Engineer (rotation on-call) did not acknowledge within 5 min',
    });
    const shown = await ifmesh('incident', 'show', ID);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(
      `paged next: L2 Engineering Lead via slack @webrtc-oncall at ${at(5)} (L1 On-Call Engineer (rotation on-call) did not acknowledge within 5 min) (in 5 min)`,
    );
    expect(shown.stdout).toMatch(
      /L1 On-Call Engineer \(rotation on-call\) via pagerduty, respond 15 min: paged/,
    );
    const md = () => readFileSync(openStateDir(state).reportFile(`${ID}.md`), 'utf8');
    expect(md()).toContain(`Paged next: L2 Engineering Lead via slack @webrtc-oncall at ${at(5)}`);

    // Nothing is due before five minutes; then any incident command pages L2.
    await clock.advance(4 * 60_000);
    expect(JSON.parse((await ifmesh('incident', 'due', '--json')).stdout).pages).toEqual([]);
    expect(slack()).toHaveLength(1);
    await clock.advance(60_000 + 1_000);
    // Another incident's record is torn (a full disk, a bad restore): L2 is paged all the same, and
    // the torn one is named (exit 1, for cron's mail) instead of stopping every page.
    const torn = openStateDir(state).incidentFile('INC-20250101-000000');
    writeFileSync(torn, '{"id":"INC-20250101-000000","status":"op');
    const due = await ifmesh('incident', 'due', '--json');
    expect(due.code, due.stderr).toBe(1);
    expect(due.stderr).toContain(
      `escalated ${ID}: paged L2 Engineering Lead (automatic: L1 On-Call Engineer`,
    );
    expect(due.stderr).toContain(
      `error: ${torn} is corrupted (not the JSON ifmesh wrote): its pages cannot be sent`,
    );
    expect(JSON.parse(due.stdout).pages).toEqual([
      expect.objectContaining({ incident_id: ID, level: 2, reached: true }),
    ]);
    expect(JSON.parse(due.stdout).unreadable).toEqual([expect.objectContaining({ file: torn })]);
    const torned = await ifmesh('incident', 'list');
    expect(torned.code).toBe(1);
    expect(torned.stdout).toContain(`${torn} no longer parses: not listed below`);
    expect(torned.stdout).toContain(ID);
    rmSync(torn);
    expect(slack()[1].text).toBe('@webrtc-oncall P1 INCIDENT: WebRTC Agent Mesh - Total Service Outage');
    // Paged once: the next command finds nothing due.
    expect(JSON.parse((await ifmesh('incident', 'due', '--json')).stdout).pages).toEqual([]);
    const after = JSON.parse((await ifmesh('incident', 'show', ID, '--json')).stdout);
    expect(after.escalation_level).toBe(2);
    expect(after.escalation.next).toMatchObject({ level: 3, name: 'L3 VP Engineering', due_at: at(60) });

    // "L3 for P1 > 1 h": `incident list` is an incident command too.
    await clock.advance(54 * 60_000); // 59 min 1 s
    expect((await ifmesh('incident', 'list')).stdout).toContain(`next: L3 VP Engineering at ${at(60)}`);
    expect(mail.mails).toHaveLength(0);
    await clock.advance(60_000);
    const listed = await ifmesh('incident', 'list');
    expect(listed.stderr).toContain(`escalated ${ID}: paged L3 VP Engineering (automatic: P1 open over 1 h)`);
    expect(mail.mails.map((m) => m.to)).toEqual([['engineering-vp@example.com']]);
    expect(mail.mails[0]!.data).toContain('Paging L3 VP Engineering.');

    // Resolved: PagerDuty resolves the alert, L2 and L3 and the team channel are told.
    const done = await ifmesh('incident', 'resolve', ID, '--json');
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout).escalation).toMatchObject({
      next: null,
      stopped: expect.stringMatching(/^resolved/),
    });
    expect(pagerduty().map((b) => [b.event_action, b.dedup_key])).toEqual([
      ['trigger', ID],
      ['resolve', ID],
    ]);
    expect(
      slack()
        .slice(2)
        .map((b) => b.text),
    ).toEqual([
      '@webrtc-oncall P1 RESOLVED: WebRTC Agent Mesh - Total Service Outage',
      '✅ P1 INCIDENT RESOLVED: WebRTC Agent Mesh Total Outage',
    ]);
    expect(mail.mails).toHaveLength(2);
    expect(md()).toMatch(
      /\| 2 \| L2 Engineering Lead \| slack @webrtc-oncall \| L1 unavailable \| 30 min \| paged \|/,
    );
  });

  it('show --watch drives the same schedule: L2 is paged on the look at five minutes', async () => {
    const { state, env, clock, ifmesh, slack } = await setup();
    expect((await ifmesh('incident', 'p1', '--json')).code).toBe(0);
    const io = incidentIo(openStateDir(state), (await loadConfig({ cwd: state, env })).config, null);
    const stop = new AbortController();
    const looks: { level: number; pages: number }[] = [];
    const watching = watchIncident(
      io,
      ID,
      { clock, dispatcher: getGlobalDispatcher(), signal: stop.signal },
      (r, pages) => looks.push({ level: r.escalation_level, pages: pages.length }),
      { intervalMs: 30_000 },
    );
    // Step the watch's 30 s looks one at a time: a look may page (real I/O) before it sleeps again.
    for (let k = 1; k <= 10; k++) {
      await waitFor(() => looks.length === k && clock.pending === 1, `look ${k}`);
      await clock.advance(30_000);
    }
    await waitFor(() => looks.length === 11, 'the look at 5 min');
    expect(looks.slice(0, 10).every((l) => l.level === 1 && l.pages === 0)).toBe(true);
    expect(looks[10]).toEqual({ level: 2, pages: 1 });
    expect(slack().at(-1).text).toBe('@webrtc-oncall P1 INCIDENT: WebRTC Agent Mesh - Total Service Outage');
    stop.abort();
    expect((await watching).escalation_level).toBe(2);
    await ifmesh('incident', 'resolve', ID);
  });

  it('ack stops escalation for the acked level, and acknowledges the PagerDuty alert it paged', async () => {
    const { clock, ifmesh, slack, pagerduty } = await setup();
    expect((await ifmesh('incident', 'p1', '--json')).code).toBe(0);
    await clock.advance(2 * 60_000);
    const acked = await ifmesh('incident', 'ack', ID, '--json');
    expect(acked.code).toBe(0);
    const rec = JSON.parse(acked.stdout);
    expect(rec.escalation.levels[0]).toMatchObject({ level: 1, status: 'acknowledged', acked_at: at(2) });
    expect(pagerduty().map((b) => [b.event_action, b.dedup_key])).toEqual([
      ['trigger', ID],
      ['acknowledge', ID],
    ]);
    // L2 waited on L1 being unavailable: never due now. The VP's page for a P1 over an hour still is.
    expect(rec.escalation.next).toMatchObject({ level: 3, due_at: at(60) });
    await clock.advance(20 * 60_000);
    expect(JSON.parse((await ifmesh('incident', 'due', '--json')).stdout).pages).toEqual([]);
    expect(slack()).toHaveLength(1); // the team post only
    expect((await ifmesh('incident', 'resolve', ID)).code).toBe(0);
  });

  it('--no-notify pages nobody and schedules nothing', async () => {
    const { clock, ifmesh, slack, pagerduty } = await setup();
    const rec = JSON.parse((await ifmesh('incident', 'p1', '--no-notify', '--json')).stdout);
    expect(rec).toMatchObject({ notify: false, escalation_level: 0 });
    expect(rec.escalation).toMatchObject({ next: null, stopped: 'paging is off (--no-notify)' });
    await clock.advance(120 * 60_000);
    expect(JSON.parse((await ifmesh('incident', 'due', '--json')).stdout).pages).toEqual([]);
    expect([...slack(), ...pagerduty()]).toEqual([]);
    await ifmesh('incident', 'resolve', ID);
  });

  it('a level whose page failed is not reached: loud on stderr, exit 1, in the report, and the next level is paged at once', async () => {
    const { state, clock, ifmesh, slack, pagerduty } = await setup(() => 500);
    const r = await ifmesh('incident', 'p1', '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `error: ${ID}: pagerduty trigger to L1 On-Call Engineer (rotation on-call) FAILED after 4 attempt(s): PagerDuty answered 500`,
    );
    expect(r.stderr).not.toContain(ROUTING_KEY);
    expect(pagerduty()).toHaveLength(4);
    const rec = JSON.parse(r.stdout);
    expect(rec.escalation.levels.map((l: any) => [l.level, l.status])).toEqual([
      [1, 'failed'],
      [2, 'paged'],
      [3, 'waiting'],
    ]);
    // Reached: level 2, not 1.
    expect(rec.escalation_level).toBe(2);
    expect(rec.actions).toContainEqual(
      expect.objectContaining({ action: 'paged', ok: false, detail: expect.stringContaining('NOT reached') }),
    );
    // The team post (step 5), then L2 at once: L1 was not reached.
    expect(slack().map((b) => b.text)).toEqual([
      '🚨 P1 INCIDENT: WebRTC Agent Mesh Total Outage',
      '@webrtc-oncall P1 INCIDENT: WebRTC Agent Mesh - Total Service Outage',
    ]);
    const md = readFileSync(openStateDir(state).reportFile(`${ID}.md`), 'utf8');
    expect(md).toMatch(
      /\| 1 \| L1 On-Call Engineer \(rotation on-call\) \| pagerduty \| declared \| 15 min \| \*\*NOT REACHED\*\* \|/,
    );
    expect(md).toContain('notice(s) FAILED');

    // The failed level is retried five minutes later, loudly again while it keeps failing.
    await clock.advance(5 * 60_000);
    const retry = await ifmesh('incident', 'due', '--json');
    expect(retry.code).toBe(1);
    expect(retry.stderr).toContain(
      `error: ${ID}: paged L1 On-Call Engineer (rotation on-call) (automatic: retry`,
    );
    expect(pagerduty()).toHaveLength(8);
    await ifmesh('incident', 'resolve', ID);
  });
});
