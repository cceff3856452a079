import type { ChalkInstance } from 'chalk';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type FleetFlagsIn, resolveFleet } from '../src/cli/fleet.js';
import { intFlag, withFlags } from '../src/cli/options.js';
import { ExitCode } from '../src/errors.js';
import { planIncident, runIncident } from '../src/ops/incident/declare.js';
import { runDueEscalations } from '../src/ops/incident/escalation.js';
import {
  acknowledgeIncident,
  escalateIncident,
  resolveIncident,
  type StepResult,
  watchIncident,
} from '../src/ops/incident/lifecycle.js';
import { fleetIncidentIo, incidentOptions } from '../src/ops/incident/options.js';
import {
  INCIDENT_KINDS,
  type IncidentKind,
  type IncidentRecord,
  listIncidents,
  readIncident,
} from '../src/ops/incident/store.js';
import {
  dueLines,
  failedNoticeLines,
  incidentLine,
  renderDue,
  renderIncident,
  renderIncidentList,
  renderIncidentLive,
  renderPlan,
} from '../src/ui/incident.js';
import { watchOutput } from '../src/ui/watch.js';

type Flags = FleetFlagsIn & {
  json?: boolean;
  notify?: boolean;
  investigate?: boolean;
  dryRun?: boolean;
  watch?: boolean;
  level?: string;
};

const HELP: Record<IncidentKind, string> = {
  p1: 'total outage: page the on-call, restart dead signaling instances, tell #incident-response (incident-response-p1-total-outage.sh)',
  p2: 'high latency: quantify slow and TURN connections, push bandwidth adaptation (incident-response-p2-high-latency.sh)',
  security:
    'security breach (P1): watch one signature failure, block a repeat offender, call for key rotation when failures span peers',
  'cert-expiry': 'certificate expiration: declare, assess, and the commands to run',
  'turn-failure':
    'TURN server failure: find the failed server and a replacement, name `ifmesh failover turn`',
};

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const setup = async (flags: Flags) => {
    const r = await resolveFleet(ctx, flags);
    const out = io.output(flags);
    for (const w of r.loaded.warnings) out.warn(w);
    return { ...r, out, io: fleetIncidentIo(r.loaded, r.fleet, r.state) };
  };
  type Setup = Awaited<ReturnType<typeof setup>>;
  // Failed notices are loud: an error line each on stderr and exit 1 (the record and report keep them).
  const loud = (s: Setup, lines: string[], say = (l: string) => s.out.info(l)) => {
    for (const l of lines) say(l);
    if (lines.some((l) => l.startsWith('error:'))) io.setExitCode(ExitCode.checkFailed);
  };
  // Every incident command carries the escalation schedule forward (see README "Incidents").
  const runDue = async (s: Setup) => {
    const run = await runDueEscalations(s.io, ctx);
    const { info, errors } = dueLines(run);
    loud(s, [...info, ...errors]);
    return run;
  };
  const common = (c: Command) => withFlags(c, 'state-dir', 'signaling', 'witness', 'config', 'set', 'json');
  for (const kind of INCIDENT_KINDS) {
    common(cmd.command(kind).description(HELP[kind]))
      .option('--notify', 'page the on-call roster even where it would not by default (a P3, a P4)')
      .option(
        '--no-notify',
        'page nobody (P1 and P2 page by default when a notification channel is configured)',
      )
      .option(
        '--investigate',
        "p1: also run investigate-p1-outage.sh's checks (resources, signaling and TURN ports, witness, DNS, backends)",
      )
      .option('--dry-run', 'print the plan and touch nothing')
      .action(async (flags: Flags) => {
        const s = await setup(flags);
        const o = incidentOptions(kind, {
          loaded: s.loaded,
          fleet: s.fleet,
          state: s.state,
          notify: flags.notify,
          investigate: Boolean(flags.investigate),
          witnessToken: ctx.env.WITNESS_QUERY_TOKEN || s.loaded.raw.WITNESS_QUERY_TOKEN || undefined,
        });
        if (flags.dryRun) return s.out.result(planIncident(o, ctx), renderPlan);
        const rec = await runIncident(o, ctx);
        s.out.result(rec, (r, c) => renderIncident(r, c, s.state, ctx.clock.now()));
        loud(s, failedNoticeLines(rec.id, rec.notifications));
        if (rec.actions.some((a) => !a.ok)) io.setExitCode(ExitCode.checkFailed);
        await runDue(s);
      });
  }
  common(cmd.command('list').description('every incident, open first, with who is paged next')).action(
    async (flags: Flags) => {
      const s = await setup(flags);
      await runDue(s);
      s.out.result({ incidents: listIncidents(s.state) }, renderIncidentList);
    },
  );
  common(
    cmd
      .command('due')
      .description(
        'page whoever is due in every open incident (for cron, every minute: the schedule needs no terminal)',
      ),
  ).action(async (flags: Flags) => {
    const s = await setup(flags);
    const run = await runDue(s);
    s.out.result(run, (r, c) => renderDue(r, c, ctx.clock.now()));
  });
  common(cmd.command('show <id>').description('one incident, who was paged and who is paged next, when'))
    .option(
      '--watch',
      'follow it until resolved, paging on schedule as it comes due: redrawn on a terminal, a line per change in a pipe, NDJSON with --json',
    )
    .action(async (id: string, flags: Flags) => {
      const s = await setup(flags);
      if (!flags.watch) {
        await runDue(s);
        return s.out.result(readIncident(s.state, id), (r, c) =>
          renderIncident(r, c, s.state, ctx.clock.now()),
        );
      }
      io.claimSignal(); // Ctrl-C ends the watch, leaving its last view
      const view = (r: IncidentRecord, c: ChalkInstance) => renderIncidentLive(r, c, ctx.clock.now());
      const spec = { key: (r: IncidentRecord) => JSON.stringify(r), line: incidentLine, view };
      const rec = await watchOutput(ctx, Boolean(flags.json), spec, (look, note) =>
        watchIncident(s.io, id, ctx, (r, pages) => {
          loud(s, [...dueLines({ pages }).info, ...dueLines({ pages }).errors], note);
          look(r);
        }),
      );
      if (!rec) io.setExitCode(ExitCode.interrupted);
    });
  const lifecycle: [string, string, (s: Setup, id: string, flags: Flags) => Promise<StepResult>][] = [
    [
      'resolve',
      'close it, release the deploy lock, tell everyone who was paged',
      (s, id) => resolveIncident(s.io, id, ctx),
    ],
    ['escalate', 'page the next level of the on-call roster now', (s, id) => escalateIncident(s.io, id, ctx)],
    [
      'ack',
      'acknowledge: escalation past the acknowledging level stops (PagerDuty acknowledged for a level it paged)',
      (s, id, flags) =>
        acknowledgeIncident(s.io, id, ctx, {
          level: flags.level === undefined ? undefined : intFlag(flags.level, '--level', 1, 9),
        }),
    ],
  ];
  for (const [name, what, fn] of lifecycle) {
    const c = common(cmd.command(`${name} <id>`).description(what));
    if (name === 'ack')
      c.option(
        '--level <n>',
        'the roster level acknowledging (default: the lowest one paged and not yet acknowledged)',
      );
    c.action(async (id: string, flags: Flags) => {
      const s = await setup(flags);
      // The step first: an `ack` must land before whatever it stops comes due.
      const { rec, sent } = await fn(s, id, flags);
      loud(s, failedNoticeLines(rec.id, sent));
      const run = await runDue(s);
      const after = run.pages.some((p) => p.incident_id === id) ? readIncident(s.state, id) : rec;
      s.out.result(after, (r, c2) => renderIncident(r, c2, s.state, ctx.clock.now()));
    });
  }
}
