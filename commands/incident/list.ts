import { defineCommand } from '../../src/cli/define.js';
import { COMMON, type IncidentFlags } from './flags.js';

export const list = defineCommand<IncidentFlags, [], 'fleet'>({
  path: 'incident list',
  summary: 'every incident, open first, with who is paged next',
  examples: ['ifmesh incident list'],
  flags: COMMON,
  needs: ['fleet'],
  async run({ needs, ctx, out }) {
    const [{ incidentSession }, { listIncidents }, { renderIncidentList }] = await Promise.all([
      import('./session.js'),
      import('../../src/ops/incident/store.js'),
      import('../../src/ui/incident.js'),
    ]);
    const s = incidentSession(needs, ctx, out);
    await s.runDue();
    out.result({ incidents: listIncidents(s.state) }, renderIncidentList);
    return s.outcome();
  },
});

export const due = defineCommand<IncidentFlags, [], 'fleet'>({
  path: 'incident due',
  summary:
    'page whoever is due in every open incident (for cron, every minute: the schedule needs no terminal)',
  examples: ['ifmesh incident due   # from cron, every minute'],
  flags: COMMON,
  needs: ['fleet'],
  async run({ needs, ctx, out }) {
    const [{ incidentSession }, { renderDue }] = await Promise.all([
      import('./session.js'),
      import('../../src/ui/incident.js'),
    ]);
    const s = incidentSession(needs, ctx, out);
    const run = await s.runDue();
    out.result(run, (r, c) => renderDue(r, c, ctx.clock.now()));
    return s.outcome();
  },
});
