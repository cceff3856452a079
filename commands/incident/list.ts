import { defineCommand } from '../../src/cli/define.js';
import { COMMON, type IncidentFlags } from './flags.js';

export const list = defineCommand<IncidentFlags, [], 'fleet'>({
  path: 'incident list',
  summary: 'every incident, open first, with who is paged next',
  examples: ['ifmesh incident list'],
  flags: COMMON,
  needs: ['fleet'],
  async run({ needs, ctx, out }) {
    const [{ incidentSession }, { scanIncidents }, { renderIncidentList }] = await Promise.all([
      import('./session.js'),
      import('../../src/ops/incident/store.js'),
      import('../../src/ui/incident.js'),
    ]);
    const s = incidentSession(needs, ctx, out);
    // A torn record is named by runDue (an error line, exit 1) and in the list; the rest is listed.
    await s.runDue();
    const { records, unreadable } = scanIncidents(s.state);
    out.result({ incidents: records, unreadable }, renderIncidentList);
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
