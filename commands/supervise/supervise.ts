import { defineCommand } from '../../src/cli/define.js';
import { intFlag } from '../../src/cli/options.js';

export default defineCommand<{ maxTries: string }, [], 'fleet'>({
  path: 'supervise',
  examples: ['ifmesh supervise --state-dir .ifmesh'],
  flags: [
    'state-dir',
    'config',
    'set',
    {
      flags: '--max-tries <n>',
      description: 'restarts within a minute before a service is left crash-looping',
      // WATCHDOG_DEFAULTS.maxTries: importing the watchdog here would load undici and ioredis for
      // --help (test/unit/definitions.test.ts compares the two).
      default: '5',
    },
  ],
  needs: ['fleet'],
  async run({ flags, needs: { state, fleet }, ctx, io }) {
    const maxTries = intFlag(flags.maxTries, '--max-tries', 1, 1_000);
    const { superviseServices } = await import('../../src/ops/fleet/supervise.js');
    io.claimSignal();
    await superviseServices(state, fleet, maxTries, ctx);
  },
});
