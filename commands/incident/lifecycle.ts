import type { Context } from '../../src/cli/context.js';
import { type CommandDefinition, defineCommand, type FlagSpec } from '../../src/cli/define.js';
import type { StepResult } from '../../src/ops/incident/lifecycle.js';
import { COMMON, type IncidentFlags } from './flags.js';
import type { IncidentSession } from './session.js';

type Step = (s: IncidentSession, id: string, flags: IncidentFlags, ctx: Context) => Promise<StepResult>;

/** `incident resolve|escalate|ack <id>`: the step, then the schedule carried forward. */
function step(
  name: string,
  summary: string,
  example: string,
  fn: Step,
  flags: readonly FlagSpec[] = [],
): CommandDefinition<IncidentFlags, [string], 'fleet'> {
  return defineCommand<IncidentFlags, [string], 'fleet'>({
    path: `incident ${name}`,
    summary,
    examples: [example],
    args: [{ name: '<id>' }],
    flags: [...COMMON, ...flags],
    needs: ['fleet'],
    async run({ args: [id], flags: f, needs, ctx, out }) {
      const [{ incidentSession }, { readIncident }, ui] = await Promise.all([
        import('./session.js'),
        import('../../src/ops/incident/store.js'),
        import('../../src/ui/incident.js'),
      ]);
      const s = incidentSession(needs, ctx, out);
      // The step first: an `ack` must land before whatever it stops comes due.
      const { rec, sent } = await fn(s, id, f, ctx);
      s.loud(ui.failedNoticeLines(rec.id, sent));
      const run = await s.runDue();
      const after = run.pages.some((p) => p.incident_id === id) ? readIncident(s.state, id) : rec;
      out.result(after, (r, c) => ui.renderIncident(r, c, s.state, ctx.clock.now()));
      return s.outcome();
    },
  });
}

const lifecycle = () => import('../../src/ops/incident/lifecycle.js');

export const resolve = step(
  'resolve',
  'close it, release the deploy lock, tell everyone who was paged',
  'ifmesh incident resolve INC-20261130-193000',
  async (s, id, _f, ctx) => (await lifecycle()).resolveIncident(s.io, id, ctx),
);

export const escalate = step(
  'escalate',
  'page the next level of the on-call roster now',
  'ifmesh incident escalate INC-20261130-193000',
  async (s, id, _f, ctx) => (await lifecycle()).escalateIncident(s.io, id, ctx),
);

export const ack = step(
  'ack',
  'acknowledge: escalation past the acknowledging level stops (PagerDuty acknowledged for a level it paged)',
  'ifmesh incident ack INC-20261130-193000 --level 1',
  async (s, id, f, ctx) => {
    const { intFlag } = await import('../../src/cli/options.js');
    const level = f.level === undefined ? undefined : intFlag(f.level, '--level', 1, 9);
    return (await lifecycle()).acknowledgeIncident(s.io, id, ctx, { level });
  },
  [
    {
      flags: '--level <n>',
      description: 'the roster level acknowledging (default: the lowest one paged and not yet acknowledged)',
    },
  ],
);
