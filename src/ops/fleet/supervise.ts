// `ifmesh supervise`: the watchdog over the state dir's services, each restart or give-up logged on
// stderr with a timestamp and sent to the witness, until the signal aborts.
import type { Context } from '../../cli/context.js';
import type { StateDir } from '../../state/state-dir.js';
import { openWitness } from '../events.js';
import type { Fleet } from './fleet.js';
import { runWatchdog } from './watchdog.js';

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
