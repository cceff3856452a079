// An open incident's life after it is declared: acknowledge (which stops escalation past the
// acknowledging level), escalate by hand, resolve (which releases the deploy lock and tells everyone
// who was paged), and `show --watch`, which is only a loop around the schedule any command drives.
import { CheckFailedError, UsageError } from '../../errors.js';
import { passLock, releaseLock } from '../../state/lock.js';
import type { OpContext } from '../shared.js';
import { postToTeam, recordPage, runDueEscalations, sendPage, tellReached } from './escalation.js';
import { type IncidentIo, IncidentLog, rosterOf } from './events.js';
import { KIND_INFO } from './kinds.js';
import type { NotificationResult } from './notify/types.js';
import { type BandwidthPush, type BandwidthSetting, restoreBandwidth } from './p2.js';
import { saveIncident } from './report.js';
import { initialEscalation, nextUnreached, refreshSchedule } from './schedule.js';
import {
  type IncidentRecord,
  listIncidents,
  readIncident,
  withIncidentLock,
  writeIncident,
} from './store.js';

/** How often `incident show --watch` looks: its view is current, its pages go out on time. */
export const WATCH_INTERVAL_MS = 2_000;

type Ctx = Pick<OpContext, 'clock' | 'dispatcher' | 'signal'>;

/** What a lifecycle step did: the record after it, and the notices it sent (failed ones included). */
export interface StepResult {
  rec: IncidentRecord;
  sent: NotificationResult[];
}

function open(io: IncidentIo, id: string): IncidentRecord {
  const rec = readIncident(io.state, id);
  if (rec.status !== 'open')
    throw new CheckFailedError(
      `incident ${id} was resolved at ${rec.resolved_at}`,
      'see `ifmesh incident show ID`',
      'incident_resolved',
    );
  // A record written before the roster gets today's, without a schedule: escalation is by hand.
  rec.escalation ??= {
    ...initialEscalation(rosterOf(io)),
    stopped: 'declared before the on-call roster: `ifmesh incident escalate ID` pages by hand',
  };
  return rec;
}

const at = (ctx: Ctx) => new Date(ctx.clock.now()).toISOString();

/** Pages the lowest level not reached yet, whatever its condition (a person decided). */
export async function escalateIncident(
  io: IncidentIo,
  id: string,
  ctx: Ctx,
  reason = 'escalated by hand',
): Promise<StepResult> {
  return withIncidentLock(io.state, `incident escalate ${id}`, ctx.clock, async () => {
    const rec = open(io, id);
    const s = nextUnreached(rec);
    if (!s)
      throw new CheckFailedError(
        `incident ${id} has reached every level of its roster (${rec.escalation!.levels.map((l) => l.name).join(', ') || 'none'})`,
        'resolve it, or page by hand',
      );
    const log = new IncidentLog(rec, io, ctx);
    const p = await sendPage(rec, s.level, reason, io, ctx);
    recordPage(rec, p, log, 'escalated');
    refreshSchedule(rec);
    await saveIncident(rec, io.state, log);
    return { rec, sent: p.results };
  });
}

/**
 * Records that `level` (default: the lowest one paged and not yet acknowledged) acknowledged: the
 * levels that wait on it being unavailable are not paged, and failed pages below it are not retried.
 * A level reached through PagerDuty acknowledges the alert there too.
 */
export async function acknowledgeIncident(
  io: IncidentIo,
  id: string,
  ctx: Ctx,
  o: { level?: number | undefined } = {},
): Promise<StepResult> {
  return withIncidentLock(io.state, `incident ack ${id}`, ctx.clock, async () => {
    const rec = open(io, id);
    const e = rec.escalation!;
    const s =
      o.level !== undefined
        ? e.levels.find((x) => x.level === o.level)
        : (e.levels.find((x) => x.status === 'paged') ??
          e.levels.find((x) => x.status === 'failed') ??
          e.levels[0]);
    if (!s)
      throw new UsageError(
        o.level !== undefined
          ? `incident ${id} has no level ${o.level} (its roster: ${e.levels.map((x) => x.level).join(', ') || 'empty'})`
          : `incident ${id} has no roster to acknowledge`,
        'see `ifmesh incident show ID`',
      );
    if (s.status === 'acknowledged')
      throw new CheckFailedError(`${s.name} already acknowledged ${id} at ${s.acked_at}`, 'nothing to do');
    const wasPaged = s.status === 'paged';
    s.status = 'acknowledged';
    s.acked_at = at(ctx);
    const log = new IncidentLog(rec, io, ctx);
    const sent = wasPaged
      ? await tellReached(
          rec,
          'acknowledge',
          `${s.name} acknowledged`,
          io,
          ctx,
          [s.level],
          (c) => c === 'pagerduty',
        )
      : [];
    rec.notifications.push(...sent);
    rec.escalation_level = Math.max(rec.escalation_level, s.level);
    rec.actions.push({
      at: s.acked_at,
      action: 'acknowledged',
      ok: sent.every((n) => n.ok),
      detail: `${s.name} acknowledged: escalation past level ${s.level} for its being unavailable stops${sent.some((n) => !n.ok) ? `; PagerDuty was NOT told: ${sent.find((n) => !n.ok)?.error}` : ''}`,
    });
    log.log('incident_acknowledged', { metadata: { level: s.level, name: s.name } });
    refreshSchedule(rec);
    await saveIncident(rec, io.state, log);
    return { rec, sent };
  });
}

export async function resolveIncident(io: IncidentIo, id: string, ctx: Ctx): Promise<StepResult> {
  return withIncidentLock(io.state, `incident resolve ${id}`, ctx.clock, async () => {
    const rec = open(io, id);
    const log = new IncidentLog(rec, io, ctx);
    // Deployments stay halted while any incident is open: the lock passes to the oldest other open one.
    const heir = listIncidents(io.state).find((r) => r.status === 'open' && r.id !== id);
    let passed: string | undefined;
    let released = false;
    if (rec.lock_token && heir) {
      const h = await passLock(io.state, 'deploy', rec.lock_token, `incident ${heir.id}`, ctx.clock, {
        persistent: true,
        release_hint: `resolve the incident first: ifmesh incident resolve ${heir.id}`,
      });
      if (h) {
        writeIncident(io.state, { ...heir, lock_token: h.token });
        passed = heir.id;
      }
    } else if (rec.lock_token) released = await releaseLock(io.state, 'deploy', rec.lock_token);
    rec.lock_token = null;
    // A P2's 1 Mbit/s cap ends with it: the setting from before goes back to where it was pushed.
    const capped = rec.findings.bandwidth as BandwidthPush[] | undefined;
    const before = rec.findings.bandwidth_before as BandwidthSetting | undefined;
    if (before && capped?.some((p) => p.ok)) {
      const restored = await restoreBandwidth(capped, before, ctx);
      const setting = before.enableBandwidthAdaptation
        ? `adaptation on${before.maxBitrateMbps !== null ? `, at most ${before.maxBitrateMbps} Mbit/s` : ''}`
        : 'adaptation off';
      for (const r of restored)
        rec.actions.push({
          at: at(ctx),
          action: 'bandwidth_restored',
          ok: r.ok,
          detail: r.ok
            ? `${r.instance}: ${setting} again (as before the incident), ${r.detail}`
            : `${r.instance}: ${r.detail}; the 1 Mbit/s cap stays: POST /config/bandwidth {"enableBandwidthAdaptation":${before.enableBandwidthAdaptation}} by hand`,
        });
    }
    rec.status = 'resolved';
    rec.resolved_at = at(ctx);
    rec.escalation!.next = null;
    rec.escalation!.stopped = `resolved at ${rec.resolved_at}`;
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
    // Everyone who was told is told it is over: PagerDuty resolves the alert, Slack and e-mail get a
    // word, and so does the team channel if it heard of the incident.
    const summary = `resolved at ${rec.resolved_at}`;
    const sent = await tellReached(rec, 'resolve', summary, io, ctx);
    if (rec.notifications.some((n) => n.level === 0 && n.ok))
      sent.push(await postToTeam(rec, 'resolve', summary, KIND_INFO[rec.kind].headline, io, ctx));
    rec.notifications.push(...sent);
    log.log('incident_resolved', {
      metadata: { duration_ms: Date.parse(rec.resolved_at) - Date.parse(rec.started_at) },
    });
    await saveIncident(rec, io.state, log);
    return { rec, sent };
  });
}

/**
 * Follows an incident until it is resolved or `ctx.signal` aborts, running its due escalations on
 * every look, every `intervalMs` (the same schedule any command or cron drives); calls `onUpdate`
 * with every look. `maxLooks` bounds it (a test's, or forever in practice).
 */
export async function watchIncident(
  io: IncidentIo,
  id: string,
  ctx: Ctx,
  onUpdate: (rec: IncidentRecord, pages: Awaited<ReturnType<typeof runDueEscalations>>['pages']) => void,
  { intervalMs = WATCH_INTERVAL_MS, maxLooks = Number.MAX_SAFE_INTEGER } = {},
): Promise<IncidentRecord> {
  let rec = readIncident(io.state, id);
  for (let look = 0; look < maxLooks; look++) {
    const run = await runDueEscalations(io, ctx, { only: id });
    rec = readIncident(io.state, id);
    onUpdate(rec, run.pages);
    if (rec.status !== 'open' || ctx.signal.aborted) break;
    try {
      await ctx.clock.sleep(intervalMs, ctx.signal);
    } catch {
      break;
    }
  }
  return rec;
}
