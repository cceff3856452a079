// `ifmesh incident p1|p2|security|cert-expiry|turn-failure`: declare (id, witness, deploy lock),
// assess and classify the impact, then the kind's own procedure, and a report. Plan first: the plan
// is what --dry-run prints, and nothing is touched until apply.
import { randomUUID } from 'node:crypto';
import { acquireLock, lockHolder } from '../../state/lock.js';
import type { OpContext } from '../shared.js';
import { assessImpact, CLASSIFICATION, classify, higher } from './classify.js';
import { type IncidentIo, IncidentLog, notifyLevel } from './events.js';
import type { Severity } from './notify/types.js';
import { deadSignaling } from './p1.js';
import { KIND_PROCEDURES } from './procedures.js';
import { writeReport } from './report.js';
import {
  type ActionTaken,
  type IncidentKind,
  type IncidentRecord,
  incidentIdFor,
  writeIncident,
} from './store.js';

export const KIND_INFO: Record<IncidentKind, { severity: Severity; title: string; replaces: string }> = {
  p1: {
    severity: 'P1',
    title: 'WebRTC Agent Mesh - Total Service Outage',
    replaces: 'incident-response-p1-total-outage.sh',
  },
  p2: {
    severity: 'P2',
    title: 'WebRTC Agent Mesh - High Latency',
    replaces: 'incident-response-p2-high-latency.sh',
  },
  security: {
    severity: 'P2',
    title: 'WebRTC Agent Mesh - Security Event',
    replaces: 'incident-response-p1-security.sh',
  },
  'cert-expiry': {
    severity: 'P3',
    title: 'WebRTC Agent Mesh - Certificate Expiration',
    replaces: 'incident-response-p3-cert-expiry.sh',
  },
  'turn-failure': {
    severity: 'P2',
    title: 'WebRTC Agent Mesh - TURN Server Failure',
    replaces: 'incident-response-p2-turn-failure.sh',
  },
};

export interface IncidentOptions extends IncidentIo {
  kind: IncidentKind;
  /** http(s) base URLs of the signaling instances. */
  signaling: string[];
  witnessToken?: string | undefined;
  notify: boolean;
  investigate: boolean;
  /** Hosts investigate's DNS step resolves (signaling, witness, TURN). */
  hosts: string[];
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
  steps: string[];
}

export function planIncident(o: IncidentOptions, ctx: Pick<OpContext, 'clock'>): IncidentPlan {
  const steps = [
    'create an incident id; log incident_declared to the witness',
    'take the deploy lock until `ifmesh incident resolve ID` (deploy, canary and rollback refuse meanwhile)',
    ...(o.notify ? ['trigger PagerDuty (escalation level 1)'] : []),
    `assess impact from ${o.signaling.join(', ') || 'no signaling instance'} and the witness; classify P1–P4`,
  ];
  if (o.kind === 'p1') {
    const dead = deadSignaling(o.stateDir, ctx).map((r) => r.name);
    steps.push(
      dead.length
        ? `restart dead signaling instances: ${dead.join(', ')}`
        : 'no dead signaling instance to restart',
    );
    if (o.investigate) steps.push('investigate: resources, network, witness errors, DNS, backends');
  }
  if (o.kind === 'p2')
    steps.push(
      'quantify high-latency and TURN connections',
      'POST /config/bandwidth {"enableBandwidthAdaptation":true,"maxBitrateMbps":1} once per cluster',
    );
  if (o.kind === 'security')
    steps.push(
      'walk tree 4 (security event): watch one failure, block a repeat offender on every instance, or escalate failures across peers to P1',
    );
  if (o.kind === 'cert-expiry')
    steps.push(
      `check ${o.tlsCert ?? 'SIGNALING_TLS_CERT'} as \`ifmesh certs check\` does; name \`ifmesh certs rotate\``,
    );
  if (o.kind === 'turn-failure') steps.push('hand over: print the commands to run');
  steps.push('write the report to <state>/reports/');
  return { kind: o.kind, severity: KIND_INFO[o.kind].severity, steps };
}

export async function runIncident(o: IncidentOptions, ctx: OpContext): Promise<IncidentRecord> {
  const now = () => new Date(ctx.clock.now()).toISOString();
  const info = KIND_INFO[o.kind];
  const id = incidentIdFor(o.kind, ctx.clock.now(), o.stateDir);
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
    notify: o.notify,
    escalation_level: 0,
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
  writeIncident(o.stateDir, rec);
  // A deploy in flight or another open incident keeps the lock: the procedure goes on regardless.
  try {
    const lock = await acquireLock(o.stateDir, 'deploy', `incident ${id}`, ctx.clock, {
      persistent: true,
      release_hint: `resolve the incident first: ifmesh incident resolve ${id}`,
    });
    rec.lock_token = lock.holder.token;
    act('deployments_halted', true, 'deploy lock taken: deploy, canary and rollback refuse until resolved');
  } catch (err) {
    // Another open incident holds it: deployments are halted all the same, and stay so (resolve passes it on).
    const holder = await lockHolder(o.stateDir, 'deploy');
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
    metadata: { kind: o.kind, title: info.title },
  });
  const paging = o.notify ? notifyLevel(rec, 'trigger', 1, o, ctx) : undefined;
  if (o.notify) rec.escalation_level = 1;

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
  if (paging) rec.notifications.push(await paging);
  // Escalated while it ran (security across peers): the page is raised to the new severity.
  if (o.notify && rec.severity !== info.severity)
    rec.notifications.push(await notifyLevel(rec, 'trigger', 1, o, ctx));
  rec.next_steps.push(`ifmesh incident resolve ${id}`);
  await finish(rec, o.stateDir, log);
  return rec;
}

/** Writes the record and its report; the witness's events are flushed first so the timeline has them. */
export async function finish(rec: IncidentRecord, stateDir: string, log: IncidentLog): Promise<void> {
  rec.findings.witness_flushed = await log.close();
  writeIncident(stateDir, rec);
  await writeReport(rec, stateDir);
}

export { CLASSIFICATION };
