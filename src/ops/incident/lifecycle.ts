// An open incident's life after it is declared: acknowledge, escalate (by hand, or automatically
// while `incident show --watch` runs), resolve (which releases the deploy lock).
import { CheckFailedError } from '../../errors.js';
import { passLock, releaseLock } from '../../state/lock.js';
import type { OpContext } from '../shared.js';
import { CLASSIFICATION } from './classify.js';
import { finish } from './declare.js';
import { type IncidentIo, IncidentLog, notifyLevel } from './events.js';
import { LEVEL_CHANNEL } from './notify/send.js';
import { type IncidentRecord, listIncidents, readIncident, writeIncident } from './store.js';

export const MAX_LEVEL = 3;
/** The runbook's level 3: page the VP for a P1 open over an hour. */
export const P1_EMAIL_AFTER_MS = 60 * 60_000;
export const WATCH_INTERVAL_MS = 30_000;

type Ctx = Pick<OpContext, 'clock' | 'dispatcher' | 'signal'>;

function open(io: IncidentIo, id: string): IncidentRecord {
  const rec = readIncident(io.stateDir, id);
  if (rec.status !== 'open')
    throw new CheckFailedError(
      `incident ${id} was resolved at ${rec.resolved_at}`,
      'see `ifmesh incident show ID`',
      'incident_resolved',
    );
  return rec;
}

const at = (ctx: Ctx) => new Date(ctx.clock.now()).toISOString();

/** Raises the escalation level by one and sends that level's notice. */
export async function escalateIncident(
  io: IncidentIo,
  id: string,
  ctx: Ctx,
  reason = 'escalated by hand',
): Promise<IncidentRecord> {
  const rec = open(io, id);
  if (rec.escalation_level >= MAX_LEVEL)
    throw new CheckFailedError(
      `incident ${id} is already at the last escalation level (${MAX_LEVEL}: e-mail)`,
      'resolve it, or page by hand',
    );
  const level = rec.escalation_level + 1;
  const log = new IncidentLog(rec, io, ctx);
  const sent = await notifyLevel(rec, 'trigger', level, io, ctx);
  rec.escalation_level = level;
  rec.notifications.push(sent);
  rec.actions.push({
    at: at(ctx),
    action: 'escalated',
    ok: sent.ok,
    detail: `level ${level} (${LEVEL_CHANNEL[level]}): ${reason}`,
  });
  log.log('incident_escalated', {
    metadata: { level, channel: LEVEL_CHANNEL[level], reason, notified: sent.ok },
  });
  await finish(rec, io.stateDir, log);
  return rec;
}

export async function acknowledgeIncident(io: IncidentIo, id: string, ctx: Ctx): Promise<IncidentRecord> {
  const rec = open(io, id);
  const log = new IncidentLog(rec, io, ctx);
  const sent = await notifyLevel(rec, 'acknowledge', 1, io, ctx);
  rec.notifications.push(sent);
  rec.actions.push({
    at: at(ctx),
    action: 'acknowledged',
    ok: true,
    detail: 'acknowledged by the on-call engineer',
  });
  log.log('incident_acknowledged');
  await finish(rec, io.stateDir, log);
  return rec;
}

export async function resolveIncident(io: IncidentIo, id: string, ctx: Ctx): Promise<IncidentRecord> {
  const rec = open(io, id);
  const log = new IncidentLog(rec, io, ctx);
  // Deployments stay halted while any incident is open: the lock passes to the oldest other open one.
  const heir = listIncidents(io.stateDir).find((r) => r.status === 'open' && r.id !== id);
  let passed: string | undefined;
  let released = false;
  if (rec.lock_token && heir) {
    const h = await passLock(io.stateDir, 'deploy', rec.lock_token, `incident ${heir.id}`, ctx.clock, {
      persistent: true,
      release_hint: `resolve the incident first: ifmesh incident resolve ${heir.id}`,
    });
    if (h) {
      writeIncident(io.stateDir, { ...heir, lock_token: h.token });
      passed = heir.id;
    }
  } else if (rec.lock_token) released = await releaseLock(io.stateDir, 'deploy', rec.lock_token);
  rec.lock_token = null;
  rec.status = 'resolved';
  rec.resolved_at = at(ctx);
  rec.actions.push({
    at: rec.resolved_at,
    action: 'resolved',
    ok: true,
    detail: passed
      ? `deploy lock passed to ${passed}, still open`
      : released
        ? 'deploy lock released: deployments may resume'
        : 'resolved (this incident did not hold the deploy lock)',
  });
  // Everyone who was told is told it is over: PagerDuty resolves the alert, Slack and e-mail get a word.
  if (rec.notify || rec.escalation_level > 0)
    for (let level = 1; level <= Math.max(1, rec.escalation_level); level++)
      rec.notifications.push(await notifyLevel(rec, 'resolve', level, io, ctx));
  log.log('incident_resolved', {
    metadata: { duration_ms: Date.parse(rec.resolved_at) - Date.parse(rec.started_at) },
  });
  await finish(rec, io.stateDir, log);
  return rec;
}

/** The escalation `incident show --watch` makes on its own at `now`, if any. */
export function dueEscalation(
  rec: IncidentRecord,
  now: number,
): { level: number; reason: string } | undefined {
  if (rec.status !== 'open' || rec.escalation_level >= MAX_LEVEL) return undefined;
  const openMs = now - Date.parse(rec.started_at);
  const cls = CLASSIFICATION[rec.severity];
  if (rec.escalation_level < 2 && openMs > cls.response_minutes * 60_000)
    return {
      level: rec.escalation_level + 1,
      reason: `open ${Math.round(openMs / 60_000)} min, past its response time (${cls.response_time})`,
    };
  if (rec.severity === 'P1' && openMs > P1_EMAIL_AFTER_MS && rec.escalation_level === 2)
    return { level: 3, reason: `P1 open ${Math.round(openMs / 60_000)} min (over an hour)` };
  return undefined;
}

/**
 * Follows an incident until it is resolved or `ctx.signal` aborts, escalating when due; calls
 * `onUpdate` with every look. `maxLooks` bounds it (a test's, or forever in practice).
 */
export async function watchIncident(
  io: IncidentIo,
  id: string,
  ctx: Ctx,
  onUpdate: (rec: IncidentRecord) => void,
  maxLooks = Number.MAX_SAFE_INTEGER,
): Promise<IncidentRecord> {
  let rec = readIncident(io.stateDir, id);
  for (let look = 0; look < maxLooks; look++) {
    rec = readIncident(io.stateDir, id);
    for (let due = dueEscalation(rec, ctx.clock.now()); due; due = dueEscalation(rec, ctx.clock.now()))
      rec = await escalateIncident(io, id, ctx, `automatic: ${due.reason}`);
    onUpdate(rec);
    if (rec.status !== 'open' || ctx.signal.aborted) break;
    try {
      await ctx.clock.sleep(WATCH_INTERVAL_MS, ctx.signal);
    } catch {
      break;
    }
  }
  return rec;
}
