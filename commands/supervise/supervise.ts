import { defineCommand } from '../../src/cli/define.js';
import { intFlag } from '../../src/cli/options.js';

export default defineCommand<{ maxTries: string; detach?: boolean; json?: boolean }, [], 'fleet'>({
  path: 'supervise',
  examples: ['ifmesh supervise --state-dir .ifmesh', 'ifmesh supervise --detach --state-dir .ifmesh'],
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
    {
      flags: '--detach',
      description:
        'start it in the background (as deploy and up do) and return once it watches; a dead one is started on the configuration it last ran with',
    },
    'json',
  ],
  needs: ['fleet'],
  async run({ flags, needs: { state, fleet, config }, ctx, io, out }) {
    const maxTries = intFlag(flags.maxTries, '--max-tries', 1, 1_000);
    if (flags.detach) {
      const [{ detachWatchdog }, { Supervisor }, { launchEnv }, { agentLaunchEnv }] = await Promise.all([
        import('../../src/ops/fleet/watchdog-process.js'),
        import('../../src/ops/fleet/supervisor.js'),
        import('../../src/config/load.js'),
        import('../../src/ops/deploy/deploy.js'),
      ]);
      const sup = new Supervisor(state, { clock: ctx.clock, owner: 'supervise' });
      // What deploy gives it: this configuration without the admin and cluster secrets.
      const env = agentLaunchEnv(launchEnv(ctx.env, config));
      const r = await detachWatchdog(sup, ctx, env, Boolean((flags as { config?: string }).config));
      out.result(r, (x, c) =>
        x.ok
          ? `${c.green('✓')} supervisor ${x.already_running ? `already runs (pid ${x.pid})` : x.detail}: it watches ${state.root}`
          : `${c.red('✗')} supervisor ${x.detail}`,
      );
      return r.ok ? undefined : 'checkFailed';
    }
    const { superviseServices } = await import('../../src/ops/fleet/supervise.js');
    io.claimSignal();
    await superviseServices(state, fleet, maxTries, ctx);
  },
});
