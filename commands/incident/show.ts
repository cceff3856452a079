import type { ChalkInstance } from 'chalk';
import { defineCommand } from '../../src/cli/define.js';
import type { IncidentRecord } from '../../src/ops/incident/store.js';
import { COMMON, type IncidentFlags } from './flags.js';

export default defineCommand<IncidentFlags, [string], 'fleet'>({
  path: 'incident show',
  summary: 'one incident, who was paged and who is paged next, when',
  examples: ['ifmesh incident show INC-20261130-193000 --watch'],
  args: [{ name: '<id>' }],
  flags: [
    ...COMMON,
    {
      flags: '--watch',
      description:
        'follow it until resolved, paging on schedule as it comes due: redrawn on a terminal, a line per change in a pipe, NDJSON with --json',
    },
  ],
  needs: ['fleet'],
  async run({ args: [id], flags, needs, ctx, io, out }) {
    const [{ incidentSession }, { readIncident }, { watchIncident }, ui, { watchOutput }] = await Promise.all(
      [
        import('./session.js'),
        import('../../src/ops/incident/store.js'),
        import('../../src/ops/incident/lifecycle.js'),
        import('../../src/ui/incident.js'),
        import('../../src/ui/watch.js'),
      ],
    );
    const s = incidentSession(needs, ctx, out);
    // An unknown id or a torn record fails here, said once, before the schedule would name it too.
    readIncident(s.state, id);
    if (!flags.watch) {
      await s.runDue();
      out.result(readIncident(s.state, id), (r, c) => ui.renderIncident(r, c, s.state, ctx.clock.now()));
      return s.outcome();
    }
    io.claimSignal(); // Ctrl-C ends the watch, leaving its last view
    const view = (r: IncidentRecord, c: ChalkInstance) => ui.renderIncidentLive(r, c, ctx.clock.now());
    const spec = { key: (r: IncidentRecord) => JSON.stringify(r), line: ui.incidentLine, view };
    const rec = await watchOutput(ctx, Boolean(flags.json), spec, (look, note) =>
      watchIncident(s.io, id, ctx, (r, pages) => {
        s.loud([...ui.dueLines({ pages }).info, ...ui.dueLines({ pages }).errors], note);
        look(r);
      }),
    );
    return rec ? s.outcome() : 'interrupted';
  },
});
