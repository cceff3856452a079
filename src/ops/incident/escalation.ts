// Escalation by person, on a schedule that lives in the incident record rather than in a process
// (the schedule itself, pure, is schedule.ts): pages to roster levels and their record, the team
// channel's posts, and runDueEscalations, which every `ifmesh incident` command calls and so may cron
// (`ifmesh incident due`, or maintenance calling it): whichever runs first after a due time pages,
// under the incidents lock, so a level is paged once.
import type { MeshConfig } from '../../config/load.js';
import { describeLevel, type OncallLevel } from '../../config/oncall.js';
import type { StateDir } from '../../state/state-dir.js';
import type { OpContext } from '../shared.js';
import { type IncidentIo, IncidentLog, noticeOf } from './events.js';
import { CHANNEL_KEYS, rosterNotifiers, sendNotice } from './notify/send.js';
import type { IncidentNotice, NoticeAction, NotificationResult } from './notify/types.js';
import { saveIncident } from './report.js';
import { ackMinutes, refreshSchedule, scheduledPages } from './schedule.js';
import {
  type IncidentRecord,
  type NextPage,
  scanIncidents,
  type UnreadableIncident,
  withIncidentLock,
} from './store.js';

type Ctx = Pick<OpContext, 'clock' | 'dispatcher' | 'signal'>;
const iso = (ms: number) => new Date(ms).toISOString();

/** The IncidentIo of a configuration: its notifiers, roster and team channel (for callers such as cron). */
export function incidentIo(
  state: StateDir,
  config: MeshConfig,
  witness: { url: string; apiKey: string } | null,
): IncidentIo {
  return {
    state,
    witness,
    notifiers: rosterNotifiers(config),
    roster: config.oncall,
    teamChannel: config.slackIncidentChannel,
  };
}

export interface PageOutcome {
  incident_id: string;
  level: number;
  name: string;
  reason: string;
  /** At least one of its channels delivered; a level not reached is not counted as reached. */
  reached: boolean;
  at: string;
  results: NotificationResult[];
}

function notConfigured(n: IncidentNotice, channel: keyof typeof CHANNEL_KEYS, ctx: Ctx): NotificationResult {
  return {
    channel,
    action: n.action,
    level: n.level,
    ...(n.for ? { to: n.for } : n.team_channel ? { to: n.team_channel } : {}),
    ok: false,
    attempts: 0,
    at: iso(ctx.clock.now()),
    error: `not configured: set ${CHANNEL_KEYS[channel]}`,
  };
}

/** Sends `action` to every channel of roster level `level`. */
async function sendToLevel(
  rec: IncidentRecord,
  l: OncallLevel,
  action: NoticeAction,
  summary: string,
  io: IncidentIo,
  ctx: Ctx,
  only?: (channel: string) => boolean,
): Promise<NotificationResult[]> {
  const notice = noticeOf(rec, action, { level: l.level, summary, for: describeLevel(l) });
  return Promise.all(
    l.via
      .filter((t) => !only || only(t.channel))
      .map((t) => {
        const notifier = io.notifiers[t.channel];
        const n = t.to ? { ...notice, recipient: t.to } : notice;
        return notifier ? sendNotice(notifier, n, ctx) : Promise.resolve(notConfigured(n, t.channel, ctx));
      }),
  );
}

/** Pages one level (every channel, in parallel); changes nothing in `rec` (see recordPage). */
export async function sendPage(
  rec: IncidentRecord,
  level: number,
  reason: string,
  io: IncidentIo,
  ctx: Ctx,
  summary?: string,
): Promise<PageOutcome> {
  const l = rec.escalation!.roster.find((r) => r.level === level)!;
  const results = await sendToLevel(rec, l, 'trigger', summary ?? reason, io, ctx);
  return {
    incident_id: rec.id,
    level,
    name: describeLevel(l),
    reason,
    reached: results.some((r) => r.ok),
    at: iso(ctx.clock.now()),
    results,
  };
}

/** Puts a page's outcome into the record: the level's state, the notifications, an action, an event. */
export function recordPage(
  rec: IncidentRecord,
  p: PageOutcome,
  log: IncidentLog,
  action: 'paged' | 'escalated',
): void {
  const e = rec.escalation!;
  const s = e.levels.find((x) => x.level === p.level)!;
  const l = e.roster.find((r) => r.level === p.level)!;
  const errors = p.results.filter((r) => !r.ok).map((r) => `${r.channel}: ${r.error}`);
  s.pages++;
  s.error = errors.length ? errors.join('; ') : null;
  if (p.reached) {
    s.status = 'paged';
    s.paged_at = p.at;
    s.ack_due_at = iso(Date.parse(p.at) + ackMinutes(l, rec.severity) * 60_000);
    s.failed_at = null;
  } else {
    s.status = 'failed';
    s.failed_at = p.at;
  }
  rec.notifications.push(...p.results);
  rec.escalation_level = Math.max(
    0,
    ...e.levels.filter((x) => x.status === 'paged' || x.status === 'acknowledged').map((x) => x.level),
  );
  rec.actions.push({
    at: p.at,
    action,
    ok: p.reached && errors.length === 0,
    detail: `${p.name} via ${s.via.join(', ')}: ${p.reason}${p.reached ? (errors.length ? ` (reached; failed: ${errors.join('; ')})` : '') : ` — NOT reached: ${errors.join('; ')}`}`,
  });
  log.log(action === 'paged' ? 'incident_paged' : 'incident_escalated', {
    metadata: { level: p.level, name: p.name, via: s.via, reason: p.reason, reached: p.reached, errors },
  });
}

/** Pages every level whose time has come (one pass per level), then recomputes `next`. */
export async function escalateDue(
  rec: IncidentRecord,
  io: IncidentIo,
  ctx: Ctx,
  log: IncidentLog,
): Promise<PageOutcome[]> {
  const out: PageOutcome[] = [];
  const done = new Set<number>();
  for (;;) {
    const now = ctx.clock.now();
    const due = scheduledPages(rec).find((p) => Date.parse(p.due_at) <= now && !done.has(p.level));
    if (!due) break;
    done.add(due.level);
    const p = await sendPage(rec, due.level, `automatic: ${due.reason}`, io, ctx);
    recordPage(rec, p, log, 'escalated');
    out.push(p);
  }
  refreshSchedule(rec);
  return out;
}

/** Tells every level that was reached (and the team channel, if it was told) with `action`. */
export async function tellReached(
  rec: IncidentRecord,
  action: NoticeAction,
  summary: string,
  io: IncidentIo,
  ctx: Ctx,
  levels?: number[],
  only?: (channel: string) => boolean,
): Promise<NotificationResult[]> {
  const e = rec.escalation;
  if (!e) return [];
  const reached = e.levels.filter(
    (s) => (s.status === 'paged' || s.status === 'acknowledged') && (!levels || levels.includes(s.level)),
  );
  const out: NotificationResult[] = [];
  for (const s of reached) {
    const l = e.roster.find((r) => r.level === s.level)!;
    out.push(...(await sendToLevel(rec, l, action, summary, io, ctx, only)));
  }
  return out;
}

/** The runbook's step 5 (and its recovery and resolution notices): a Slack post to the team's channel. */
export async function postToTeam(
  rec: IncidentRecord,
  action: 'trigger' | 'recovered' | 'resolve',
  summary: string,
  headline: string,
  io: IncidentIo,
  ctx: Ctx,
): Promise<NotificationResult> {
  const n: IncidentNotice = {
    ...noticeOf(rec, action, { level: 0, summary, headline }),
    team_channel: io.teamChannel || '#incident-response',
  };
  const slack = io.notifiers.slack;
  return slack ? sendNotice(slack, n, ctx) : notConfigured(n, 'slack', ctx);
}

export interface DueRun {
  /** Open incidents looked at. */
  checked: number;
  pages: PageOutcome[];
  /** Each open incident's next page after this run (null: nobody is scheduled). */
  next: { incident_id: string; next: NextPage | null; stopped: string | null }[];
  /** Records that no longer parse: their pages cannot be sent until they are fixed (exit 1). */
  unreadable: UnreadableIncident[];
}

/**
 * Pages whatever is due in every open incident of the state directory (or only `o.only`): the
 * schedule's driver. Called first by every `ifmesh incident` command, by `ifmesh incident due` (the
 * cron line) and by whoever else wants escalations to run on time. Never throws for a failed page:
 * the outcome says so (`reached: false`), and the record and report keep it.
 */
export async function runDueEscalations(
  io: IncidentIo,
  ctx: Ctx,
  o: { only?: string } = {},
): Promise<DueRun> {
  return withIncidentLock(io.state, 'incident escalations', ctx.clock, async () => {
    // A torn record is named, not fatal: the other open incidents are still paged on time.
    const { records, unreadable } = scanIncidents(io.state);
    const open = records.filter((r) => r.status === 'open' && (!o.only || r.id === o.only));
    const run: DueRun = { checked: open.length, pages: [], next: [], unreadable: o.only ? [] : unreadable };
    for (const rec of open) {
      const now = ctx.clock.now();
      const due = scheduledPages(rec).some((p) => Date.parse(p.due_at) <= now);
      if (due) {
        const log = new IncidentLog(rec, io, ctx);
        run.pages.push(...(await escalateDue(rec, io, ctx, log)));
        await saveIncident(rec, io.state, log);
      }
      run.next.push({
        incident_id: rec.id,
        next: rec.escalation?.next ?? null,
        stopped: rec.escalation?.stopped ?? null,
      });
    }
    return run;
  });
}
