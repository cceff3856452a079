import type { Context } from '../../src/cli/context.js';
import type { Outcome, Resolved } from '../../src/cli/define.js';
import { runDueEscalations } from '../../src/ops/incident/escalation.js';
import { fleetIncidentIo } from '../../src/ops/incident/options.js';
import { dueLines } from '../../src/ui/incident.js';
import type { Output } from '../../src/ui/output.js';

/** One incident command's run: the incident I/O on the fleet, and whether a notice failed. */
export function incidentSession(needs: Resolved<'fleet'>, ctx: Context, out: Output) {
  for (const w of needs.config.warnings) out.warn(w);
  let failed = false;
  const s = {
    ...needs,
    out,
    io: fleetIncidentIo(needs.config, needs.fleet, needs.state),
    /** Failed notices are loud: an error line each on stderr and exit 1 (the record and report keep them). */
    loud(lines: string[], say = (l: string) => out.info(l)): void {
      for (const l of lines) say(l);
      if (lines.some((l) => l.startsWith('error:'))) failed = true;
    },
    /** A failure that is not a notice's (a P1 action): exit 1 as well. */
    fail(): void {
      failed = true;
    },
    /** Every incident command carries the escalation schedule forward (see README "Incidents"). */
    async runDue() {
      const run = await runDueEscalations(s.io, ctx);
      const { info, errors } = dueLines(run);
      s.loud([...info, ...errors]);
      return run;
    },
    outcome(): Outcome {
      return failed ? 'checkFailed' : undefined;
    },
  };
  return s;
}

export type IncidentSession = ReturnType<typeof incidentSession>;
