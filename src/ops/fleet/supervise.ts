// `ifmesh supervise`: the watchdog over the state dir's services, each restart or give-up logged on
// stderr with a timestamp and sent to the witness, until the signal aborts.
import type { Context } from '../../cli/context.js';
import { CheckFailedError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import { openWitness } from '../events.js';
import type { Fleet } from './fleet.js';
import { Supervisor } from './supervisor.js';
import { runWatchdog } from './watchdog.js';
import { WATCHDOG_NAME } from './watchdog-process.js';

export async function superviseServices(
  state: StateDir,
  fleet: Fleet,
  maxTries: number,
  ctx: Context,
): Promise<void> {
  const witness = openWitness(
    { url: fleet.witness.url, apiKey: fleet.witness.api_key, state },
    'supervisor',
    ctx,
  );
  // One supervisor per state directory, and the one that runs is the one recorded: `up` and `deploy`
  // record the one they start; one an operator starts by hand records itself, so that status sees it
  // and a later deploy does not start a second.
  const sup = new Supervisor(state, { clock: ctx.clock, owner: 'supervise' });
  const other = sup.running(WATCHDOG_NAME);
  if (other !== undefined && other !== process.pid) {
    await witness?.close(1_500);
    throw new CheckFailedError(
      `a supervisor (pid ${other}) already watches ${state.root}`,
      `leave it running (one per state directory), or stop it first: kill ${other}`,
    );
  }
  if (other === undefined) sup.adopt({ name: WATCHDOG_NAME, role: 'supervisor' }, process.pid);
  const line = (msg: string) => ctx.stderr.write(`${new Date(ctx.clock.now()).toISOString()} ${msg}\n`);
  line(`watching the services of ${state.root} (pid ${process.pid})`);
  await runWatchdog(
    {
      state,
      maxTries,
      onEvent: (e) => {
        line(`${e.event} ${e.name}: ${e.detail}`);
        witness?.log({
          event: e.event,
          metadata: { service: e.name, role: e.role, restarts: e.restarts, detail: e.detail },
        });
      },
    },
    ctx,
  );
  line('stopping');
  await witness?.close(1_500);
}
