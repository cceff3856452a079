import { defineCommand } from '../../src/cli/define.js';
import { createProgress } from '../../src/ui/progress.js';
import { CANARY_FLAGS } from './flags.js';
import type { CanaryFlags } from './options.js';

export default defineCommand<CanaryFlags, [], 'witness'>({
  path: 'canary',
  examples: [
    'ifmesh canary --stage staging --set ICE_TRANSPORT_POLICY=relay --monitor 5m --interval 60s',
    'ifmesh canary --stage production --release <the id staging promoted, from ifmesh releases --stage staging>',
  ],
  flags: CANARY_FLAGS,
  needs: ['witness'],
  async run({ flags, needs: { config: loaded, state, witness: config }, ctx, out }) {
    const [{ gateOf }, { runCanary }, { canaryOptions, checkForce }, { renderCanary }] = await Promise.all([
      import('../../src/ops/rollout/promotion.js'),
      import('../../src/ops/rollout/canary.js'),
      import('./options.js'),
      import('../../src/ui/rollout.js'),
    ]);
    const gate = gateOf(flags.stage);
    checkForce(Boolean(flags.force), gate);
    for (const w of loaded.warnings) out.warn(w);
    const progress = await createProgress(ctx, Boolean(flags.json));
    const r = await Promise.resolve()
      .then(() =>
        runCanary(canaryOptions(flags, gate, { state, config, progress }, ctx), Boolean(flags.dryRun), ctx),
      )
      .finally(() => progress.close());
    out.result(r, renderCanary);
    return r.state && r.state.status !== 'completed' ? 'checkFailed' : undefined;
  },
});
