// Each notifier against a LOCAL receiver that stands for the remote service (PagerDuty's Events API
// v2, a Slack incoming webhook, an SMTP server) and checks what arrives. Nothing leaves loopback.
import { getGlobalDispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/cli/context.js';
import { escalateIncident, resolveIncident, watchIncident } from '../../src/ops/incident/lifecycle.js';
import { configuredNotifiers, sendNotice } from '../../src/ops/incident/notify/send.js';
import type { IncidentNotice } from '../../src/ops/incident/notify/types.js';
import { type IncidentRecord, readIncident, writeIncident } from '../../src/ops/incident/store.js';
import { tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { receiver, smtp } from '../helpers/notify-receivers.js';
import { waitFor } from '../helpers/wait.js';

const ROUTING_KEY = 'pd-routing-key-secret';
const cleanups: (() => Promise<void> | void)[] = [];
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

  it('Slack incoming webhook: the runbook fields in one attachment', async () => {
    const sl = await receiver();
    const n = configuredNotifiers({
      pagerdutyEventsUrl: '',
      pagerdutyIntegrationKey: '',
      slackWebhookUrl: `${sl.base}/slack`,
      smtpUrl: '',
      alertEmail: '',
    });
    expect((await sendNotice(n.slack!, notice({ level: 2 }), io)).ok).toBe(true);
    const body = sl.got[0]!.body;
    expect(body.text).toBe('P1 INCIDENT: WebRTC Agent Mesh - Total Service Outage');
    const fields = Object.fromEntries(body.attachments[0].fields.map((f: any) => [f.title, f.value]));
    expect(fields).toMatchObject({
      'Incident ID': 'INC-20260101-000000',
      Severity: 'P1',
      'Escalation level': '2',
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

describe('escalation', () => {
  function openP1(dir: string, startedAt: number): IncidentRecord {
    const rec: IncidentRecord = {
      id: 'INC-20260101-000000',
      kind: 'p1',
      title: 'WebRTC Agent Mesh - Total Service Outage',
      severity: 'P1',
      classification: null,
      status: 'open',
      started_at: new Date(startedAt).toISOString(),
      trace_id: 't',
      lock_token: null,
      notify: true,
      escalation_level: 1,
      witness_url: null,
      impact: null,
      tree: null,
      actions: [],
      notifications: [],
      next_steps: [],
      findings: {},
    };
    writeIncident(dir, rec);
    return rec;
  }

  it('show --watch escalates a P1 to Slack past its response time and mails ALERT_EMAIL after an hour', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const hooks = await receiver();
    const mail = await smtp();
    const clock = new FakeClock();
    openP1(dir, clock.now());
    const notifiers = configuredNotifiers({
      pagerdutyEventsUrl: `${hooks.base}/v2/enqueue`,
      pagerdutyIntegrationKey: ROUTING_KEY,
      slackWebhookUrl: `${hooks.base}/slack`,
      smtpUrl: mail.url,
      alertEmail: 'vp@example.com',
    });
    const stop = new AbortController();
    const looks: IncidentRecord[] = [];
    const watching = watchIncident(
      { stateDir: dir, witness: null, notifiers },
      'INC-20260101-000000',
      { clock, dispatcher: getGlobalDispatcher(), signal: stop.signal },
      (r) => looks.push(r),
    );
    // Step the watch's 30 s polls one at a time: a look may notify (real I/O) before it sleeps again.
    const step = async () => {
      await waitFor(() => clock.pending === 1, 'the watch to sleep');
      await clock.advance(30_000);
    };
    await waitFor(() => looks.length === 1, 'the first look');
    for (let k = 1; k <= 10; k++) await step(); // looks at 30 s … 5 min: within the response time
    await waitFor(() => looks.length === 11 && clock.pending === 1, 'the look at 5 min');
    expect(hooks.got.filter((g) => g.path === '/slack')).toHaveLength(0);
    await step(); // 5 min 30 s: past a P1's 5 minutes
    await waitFor(() => hooks.got.some((g) => g.path === '/slack'), 'the Slack escalation');
    for (let k = 12; k <= 120; k++) await step(); // … 60 min: not over an hour yet
    await waitFor(() => looks.length === 121 && clock.pending === 1, 'the look at 60 min');
    expect(mail.mails).toHaveLength(0);
    expect(readIncident(dir, 'INC-20260101-000000').escalation_level).toBe(2);
    await step(); // 60 min 30 s
    await waitFor(() => mail.mails.length === 1, 'the e-mail escalation');
    expect(mail.mails[0]!.to).toEqual(['vp@example.com']);
    await waitFor(() => looks.length === 122, 'the look after the e-mail');
    stop.abort();
    const last = await watching;
    expect(last.notifications.map((n) => [n.channel, n.level, n.ok])).toEqual([
      ['slack', 2, true],
      ['email', 3, true],
    ]);

    // Resolving tells every level that was told: PagerDuty resolves, Slack and e-mail get the word.
    const done = await resolveIncident({ stateDir: dir, witness: null, notifiers }, 'INC-20260101-000000', {
      clock,
      dispatcher: getGlobalDispatcher(),
      signal: new AbortController().signal,
    });
    expect(done.status).toBe('resolved');
    expect(hooks.got.filter((g) => g.body.event_action === 'resolve').map((g) => g.body.dedup_key)).toEqual([
      'INC-20260101-000000',
    ]);
    expect(mail.mails).toHaveLength(2);
    await expect(
      escalateIncident({ stateDir: dir, witness: null, notifiers }, 'INC-20260101-000000', {
        clock,
        dispatcher: getGlobalDispatcher(),
        signal: new AbortController().signal,
      }),
    ).rejects.toThrow(/was resolved/);
  });
});
