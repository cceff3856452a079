import { type CommandDefinition, defineCommand } from '../../src/cli/define.js';
import type { IncidentKind } from '../../src/ops/incident/store.js';
import { COMMON, type IncidentFlags } from './flags.js';

const HELP: Record<IncidentKind, [summary: string, example: string]> = {
  p1: [
    'total outage: page the on-call, restart dead signaling instances, tell #incident-response (incident-response-p1-total-outage.sh)',
    'ifmesh incident p1 --notify --investigate',
  ],
  p2: [
    'high latency: quantify slow and TURN connections, push bandwidth adaptation (incident-response-p2-high-latency.sh)',
    'ifmesh incident p2 --dry-run',
  ],
  security: [
    'security breach (P1): watch one signature failure, block a repeat offender, call for key rotation when failures span peers',
    'ifmesh incident security --dry-run',
  ],
  'cert-expiry': [
    'certificate expiration: declare, assess, and the commands to run',
    'ifmesh incident cert-expiry',
  ],
  'turn-failure': [
    'TURN server failure: find the failed server and a replacement, name `ifmesh failover turn`',
    'ifmesh incident turn-failure --json',
  ],
};

/** The kinds, in INCIDENT_KINDS's order (src/ops/incident/store.ts). */
export const KINDS = Object.keys(HELP) as IncidentKind[];

/** `incident <kind>`: declare one and run its runbook (or print the plan with --dry-run). */
export function declare(kind: IncidentKind): CommandDefinition<IncidentFlags, [], 'fleet'> {
  const [summary, example] = HELP[kind];
  return defineCommand<IncidentFlags, [], 'fleet'>({
    path: `incident ${kind}`,
    summary,
    examples: [example],
    flags: [
      ...COMMON,
      {
        flags: '--notify',
        description: 'page the on-call roster even where it would not by default (a P3, a P4)',
      },
      {
        flags: '--no-notify',
        description: 'page nobody (P1 and P2 page by default when a notification channel is configured)',
      },
      {
        flags: '--investigate',
        description:
          "p1: also run investigate-p1-outage.sh's checks (resources, signaling and TURN ports, witness, DNS, backends)",
      },
      { flags: '--dry-run', description: 'print the plan and touch nothing' },
    ],
    needs: ['fleet'],
    async run({ flags, needs, ctx, out }) {
      const [{ incidentSession }, { incidentOptions }, { planIncident, runIncident }, ui] = await Promise.all(
        [
          import('./session.js'),
          import('../../src/ops/incident/options.js'),
          import('../../src/ops/incident/declare.js'),
          import('../../src/ui/incident.js'),
        ],
      );
      const s = incidentSession(needs, ctx, out);
      const o = incidentOptions(kind, {
        loaded: s.config,
        fleet: s.fleet,
        state: s.state,
        notify: flags.notify,
        investigate: Boolean(flags.investigate),
        witnessToken: ctx.env.WITNESS_QUERY_TOKEN || s.config.raw.WITNESS_QUERY_TOKEN || undefined,
      });
      if (flags.dryRun) {
        out.result(planIncident(o, ctx), ui.renderPlan);
        return;
      }
      const rec = await runIncident(o, ctx);
      out.result(rec, (r, c) => ui.renderIncident(r, c, s.state, ctx.clock.now()));
      s.loud(ui.failedNoticeLines(rec.id, rec.notifications));
      if (rec.actions.some((a) => !a.ok)) s.fail();
      await s.runDue();
      return s.outcome();
    },
  });
}
