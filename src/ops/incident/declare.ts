// `ifmesh incident p1|p2|security|cert-expiry|turn-failure`: declare (id, witness, deploy lock, page
// the on-call at once), assess and classify the impact, then the kind's own procedure, the runbook's
// step-5 post to the team for a P1, and a report. Plan first: the plan is what --dry-run prints, and
// nothing is touched until apply.
import { randomUUID } from 'node:crypto';
import { describeLevel, describeTarget } from '../../config/oncall.js';
import { acquireLock, lockHolder } from '../../state/lock.js';
import type { OpContext } from '../shared.js';
import { assessImpact, CLASSIFICATION, classify, higher } from './classify.js';
import { escalateDue, postToTeam, recordPage, sendPage } from './escalation.js';
import { type IncidentIo, IncidentLog, impactText, rosterOf } from './events.js';
import { KIND_INFO } from './kinds.js';
import type { Severity } from './notify/types.js';
import { deadSignaling } from './p1.js';
import { KIND_PROCEDURES } from './procedures.js';
import { saveIncident } from './report.js';
import { initialEscalation, scheduledPages } from './schedule.js';
import {
  type ActionTaken,
  type IncidentKind,
  type IncidentRecord,
  incidentIdFor,
  withIncidentLock,
  writeIncident,
} from './store.js';

export interface IncidentOptions extends IncidentIo {
  kind: IncidentKind;
  /** http(s) base URLs of the signaling instances. */
  signaling: string[];
  witnessToken?: string | undefined;
  /** --notify / --no-notify; undefined: page a P1 or P2 when a notification channel is configured. */
  notify?: boolean | undefined;
  investigate: boolean;
  /** Hosts investigate's DNS step resolves (signaling, witness, TURN). */
  hosts: string[];
  /** The fleet's TURN servers (TURN_SERVERS, else the coturn records) and their credentials. */
  turn?: string[];
  turnCredentials?: { username: string; password: string } | null;
  /** SIGNALING_CLUSTER_URL: the Redis a restarted deployment instance rejoins. */
  clusterUrl?: string | undefined;
  /** For tree 4: PRODUCTION_MODE and ALLOW_SELF_SIGNED_CERTS. */
  production?: boolean;
  allowSelfSigned?: boolean;
  /** The signaling admin token that blocks a peer (SIGNALING_ADMIN_TOKEN or the local stack's). */
  adminToken?: string | undefined;
  /** Signaling TLS certificate and key, for cert-expiry's hand-over. */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}

export interface IncidentPlan {
  kind: IncidentKind;
  severity: Severity;
  paging: { on: boolean; why: string };
  steps: string[];
}

/** The runbook's support channels: "PagerDuty | P1/P2 Incidents". Others page only with --notify. */
const PAGED_BY_DEFAULT: Severity[] = ['P1', 'P2'];

/** Whether the incident pages, and why (shown in the plan, the record and the report). */
export function pagingOf(o: Pick<IncidentOptions, 'notify' | 'notifiers' | 'kind'>): {
  on: boolean;
  why: string;
} {
  const severity = KIND_INFO[o.kind].severity;
  const configured = Object.keys(o.notifiers).length > 0;
  if (o.notify === false) return { on: false, why: 'paging is off (--no-notify)' };
  if (o.notify === true) return { on: true, why: 'paging is on (--notify)' };
  if (!PAGED_BY_DEFAULT.includes(severity))
    return { on: false, why: `paging is off: a ${severity} pages nobody unless --notify` };
  if (!configured)
    return {
      on: false,
      why: 'paging is off: no notification channel is configured (PAGERDUTY_INTEGRATION_KEY, SLACK_WEBHOOK_URL, SMTP_URL)',
    };
  return { on: true, why: `paging is on (a ${severity} pages by default; --no-notify turns it off)` };
}

export function planIncident(o: IncidentOptions, ctx: Pick<OpContext, 'clock'>): IncidentPlan {
  const info = KIND_INFO[o.kind];
  const paging = pagingOf(o);
  const steps = [
    'create an incident id; log incident_declared to the witness',
    'take the deploy lock until `ifmesh incident resolve ID` (deploy, canary and rollback refuse meanwhile)',
  ];
  if (paging.on) {
    for (const l of rosterOf(o).filter((r) => !r.severities || r.severities.includes(info.severity)))
      steps.push(
        l.when.kind === 'declared'
          ? `page ${describeLevel(l)} now via ${l.via.map(describeTarget).join(', ')}`
          : `page ${describeLevel(l)} via ${l.via.map(describeTarget).join(', ')} when ${l.when_text} (on schedule: any \`ifmesh incident\` command or \`ifmesh incident due\` from cron)`,
      );
  } else steps.push(`page nobody: ${paging.why}`);
  steps.push(
    `assess impact from ${o.signaling.join(', ') || 'no signaling instance'} and the witness; classify P1–P4`,
  );
  if (o.kind === 'p1') {
    const recs = deadSignaling(o.state, ctx);
    const dead = recs.map((r) => r.name);
    steps.push(
      dead.length
        ? `restart dead signaling ${recs.some((r) => r.role === 'nginx') ? 'processes (instances, front door)' : 'instances'}: ${dead.join(', ')}`
        : 'no dead signaling instance or front door to restart',
    );
    if (o.investigate)
      steps.push('investigate: resources, network (signaling and TURN ports), witness errors, DNS, backends');
  }
  if (o.kind === 'p2')
    steps.push(
      'quantify high-latency and TURN connections',
      'POST /config/bandwidth {"enableBandwidthAdaptation":true,"maxBitrateMbps":1} once per cluster',
    );
  if (o.kind === 'security')
    steps.push(
      'walk tree 4 (security event): watch one failure, block a repeat offender on every instance, or call for key rotation when failures span peers',
    );
  if (o.kind === 'cert-expiry')
    steps.push(
      `check ${o.tlsCert ?? 'SIGNALING_TLS_CERT'} as \`ifmesh certs check\` does; name \`ifmesh certs rotate\``,
    );
  if (o.kind === 'turn-failure')
    steps.push(
      `probe the fleet's TURN servers (${(o.turn ?? []).join(', ') || 'none'}); name \`ifmesh failover turn --failed … --replacement …\``,
    );
  if (paging.on && info.severity === 'P1')
    steps.push(
      `post to ${o.teamChannel || '#incident-response'} (the runbook's step 5: id, start, severity, impact), or a recovery notice when auto-recovery restored the service`,
    );
  steps.push('write the report to <state>/reports/');
  return { kind: o.kind, severity: info.severity, paging, steps };
}

export async function runIncident(o: IncidentOptions, ctx: OpContext): Promise<IncidentRecord> {
  const now = () => new Date(ctx.clock.now()).toISOString();
  const info = KIND_INFO[o.kind];
  const paging = pagingOf(o);
  const id = incidentIdFor(o.kind, ctx.clock.now(), o.state);
  const rec: IncidentRecord = {
    id,
    kind: o.kind,
    title: info.title,
    severity: info.severity,
    classification: null,
    status: 'open',
    started_at: now(),
    trace_id: randomUUID(),
    lock_token: null,
    notify: paging.on,
    escalation_level: 0,
    escalation: initialEscalation(rosterOf(o)),
    witness_url: o.witness?.url ?? null,
    impact: null,
    tree: null,
    actions: [],
    notifications: [],
    next_steps: [],
    findings: {},
  };
  const act = (action: string, ok: boolean, detail: string): ActionTaken => {
    const a = { at: now(), action, ok, detail };
    rec.actions.push(a);
    return a;
  };
  const log = new IncidentLog(rec, o, ctx);
  writeIncident(o.state, rec);
  // A deploy in flight or another open incident keeps the lock: the procedure goes on regardless.
  try {
    const lock = await acquireLock(o.state, 'deploy', `incident ${id}`, ctx.clock, {
      persistent: true,
      release_hint: `resolve the incident first: ifmesh incident resolve ${id}`,
    });
    rec.lock_token = lock.holder.token;
    act('deployments_halted', true, 'deploy lock taken: deploy, canary and rollback refuse until resolved');
  } catch (err) {
    // Another open incident holds it: deployments are halted all the same, and stay so (resolve passes it on).
    const holder = await lockHolder(o.state, 'deploy');
    if (holder?.persistent)
      act(
        'deployments_halted',
        true,
        `already halted by ${holder.purpose}; the lock passes to this one when that is resolved`,
      );
    else act('deployments_halted', false, `deploy lock not taken: ${(err as Error).message}`);
  }
  log.log('incident_declared', {
    action: 'deployments_halted',
    metadata: { kind: o.kind, title: info.title, paging: paging.on },
  });
  // Step 1, "immediately page on-call": sent now, alongside the assessment and the procedure, so a
  // slow or dead PagerDuty never delays a restart; recorded once the procedure is done.
  const at = ctx.clock.now();
  const pages = paging.on
    ? scheduledPages(rec, { declaring: true })
        .filter((p) => Date.parse(p.due_at) <= at)
        .map((p) => sendPage(rec, p.level, p.reason, o, ctx, info.description))
    : [];
  // In production an outage that pages nobody is itself a failure.
  if (!paging.on && o.production && PAGED_BY_DEFAULT.includes(info.severity) && o.notify !== false)
    act('paged', false, `nobody was paged: ${paging.why}`);

  const witnessQ = o.witness ? { url: o.witness.url, token: o.witnessToken } : null;
  const { impact, sample } = await assessImpact({
    signaling: o.signaling,
    witness: witnessQ,
    now: ctx.clock.now,
    dispatcher: ctx.dispatcher,
  });
  rec.impact = impact;
  rec.classification = classify(impact);
  act(
    'impact_assessed',
    true,
    `${impact.agents_connected} agents connected, ${impact.failed_connections_5m ?? 'unknown'} failed connections in 5 min, ${impact.instances.filter((i) => i.up).length}/${impact.instances.length} instances up: ${rec.classification.level} (${rec.classification.description})`,
  );
  log.log('incident_impact_assessed', { metadata: { ...impact, classification: rec.classification.level } });

  await KIND_PROCEDURES[o.kind](o, rec, { act, log, witness: witnessQ, impact, sample }, ctx);
  if (rec.classification && higher(rec.severity, rec.classification.level) !== rec.severity) {
    rec.next_steps.push(
      `the impact classifies as ${rec.classification.level}: ifmesh incident escalate ${id}`,
    );
  }
  for (const p of await Promise.all(pages)) recordPage(rec, p, log, 'paged');

  // Step 5, "engage response team": the runbook posts to #incident-response unless restarting the
  // signaling server brought it back (its `exit 0`); then the team hears that it recovered instead.
  const restored = rec.auto_recovery?.restored === true;
  if (paging.on && rec.severity === 'P1') {
    const r = await postToTeam(
      rec,
      restored ? 'recovered' : 'trigger',
      restored ? `auto-recovery restored the service: ${rec.auto_recovery!.detail}` : info.description,
      info.headline,
      o,
      ctx,
    );
    rec.notifications.push(r);
    act(
      'team_notified',
      r.ok,
      `${r.to}: ${restored ? 'recovery notice' : `${rec.severity} INCIDENT (${impactText(rec)})`}${r.ok ? '' : ` — NOT posted: ${r.error}`}`,
    );
    log.log('incident_team_notified', {
      metadata: { channel: r.to, restored, posted: r.ok, ...(r.error ? { error: r.error } : {}) },
    });
  }
  if (rec.escalation_level > 0)
    rec.next_steps.push(`ifmesh incident ack ${id}   (stops escalation past the acknowledging level)`);
  rec.next_steps.push(`ifmesh incident resolve ${id}`);

  // The schedule starts now, under the incidents lock: a level whose page failed makes the next one
  // due at once, and cron or any later command carries it on from the record.
  await withIncidentLock(o.state, `incident ${id}`, ctx.clock, async () => {
    rec.escalation!.stopped = !paging.on
      ? paging.why
      : restored
        ? `service restored by auto-recovery at ${rec.auto_recovery!.at}: no further automatic paging (\`ifmesh incident escalate ${id}\` pages by hand)`
        : null;
    await escalateDue(rec, o, ctx, log);
    await saveIncident(rec, o.state, log);
  });
  return rec;
}

export { CLASSIFICATION, KIND_INFO };
