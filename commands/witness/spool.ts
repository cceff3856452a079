import { defineCommand } from '../../src/cli/define.js';
import type { ConfigFlags } from '../../src/cli/options.js';

type Flags = ConfigFlags & { flush?: boolean; witness?: string; stateDir?: string; json?: boolean };

export default defineCommand<Flags, [], 'state'>({
  path: 'witness spool',
  summary: 'show events waiting for an unreachable witness; --flush replays them',
  examples: ['ifmesh witness spool --flush'],
  flags: [
    { flags: '--flush', description: 'send what is waiting now' },
    'witness',
    'state-dir',
    'config',
    'set',
    'json',
  ],
  needs: ['state'],
  async run({ flags, needs: { state }, ctx, out }) {
    const [{ witnessEndpoint }, { spoolStatus }, { WitnessKeyChangedError }, { renderSpool }] =
      await Promise.all([
        import('./client.js'),
        import('../../src/ops/witness/spool.js'),
        import('../../src/clients/witness-checkpoint.js'),
        import('../../src/ui/witness.js'),
      ]);
    const { url, apiKey } = flags.flush
      ? await witnessEndpoint(flags, ctx)
      : { url: undefined, apiKey: undefined };
    const report = await spoolStatus({
      dir: state.spool,
      flush: Boolean(flags.flush),
      url,
      apiKey,
      state,
      dispatcher: ctx.dispatcher,
    });
    out.result(report, renderSpool);
    if (report.key_changed) {
      const err = new WitnessKeyChangedError(report.key_changed);
      out.warn(`${err.message}; ${err.hint}`);
      return 'checkFailed';
    }
    return flags.flush && report.pending_events > 0 ? 'unreachable' : undefined;
  },
});
