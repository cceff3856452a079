import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { resolveFleet } from '../src/cli/fleet.js';
import { intFlag, withFlags } from '../src/cli/options.js';
import { openWitness } from '../src/ops/events.js';
import { runWatchdog, WATCHDOG_DEFAULTS } from '../src/ops/fleet/watchdog.js';

type Flags = { stateDir?: string; config?: string; set?: Record<string, string>; maxTries: string };

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withFlags(cmd, 'state-dir', 'config', 'set')
    .option(
      '--max-tries <n>',
      'restarts within a minute before a service is left crash-looping',
      String(WATCHDOG_DEFAULTS.maxTries),
    )
    .action(async (flags: Flags) => {
      const maxTries = intFlag(flags.maxTries, '--max-tries', 1, 1_000);
      const { state, fleet } = await resolveFleet(ctx, flags);
      io.claimSignal();
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
    });
}
