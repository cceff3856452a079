import { type CommandDefinition, defineCommand } from '../../src/cli/define.js';
import { createProgress } from '../../src/ui/progress.js';
import type { CanaryFlags } from './options.js';

type Action = 'promote' | 'abort' | 'resume';

const SUMMARY: Record<Action, string> = {
  promote: 'skip the remaining analysis and move every agent to the candidate',
  abort: 'roll the canary agents back to the stable release',
  resume: 'go on with a canary whose runner died, from the step its state records',
};
const EXAMPLE: Record<Action, string> = {
  promote: 'ifmesh canary promote --stage staging',
  abort: 'ifmesh canary abort',
  resume: 'ifmesh canary resume',
};

/** `canary promote|abort|resume`: a decision on the canary in progress, or its resumption. */
function decide(action: Action): CommandDefinition<CanaryFlags, [], 'witness'> {
  return defineCommand<CanaryFlags, [], 'witness'>({
    path: `canary ${action}`,
    summary: SUMMARY[action],
    examples: [EXAMPLE[action]],
    flags: ['config', 'set', 'json', 'stage', 'state-dir', 'witness'],
    needs: ['witness'],
    // the parent shares option names (--state-dir, --json): commander hands them to it
    inheritFlags: true,
    async run({ flags, needs: { state, witness: config }, ctx, out }) {
      const { decideCanary, resumeCanary } = await import('../../src/ops/rollout/canary.js');
      const progress = await createProgress(ctx, Boolean(flags.json));
      const o = { state, config, progress };
      const r = await (action === 'resume' ? resumeCanary(o, ctx) : decideCanary(o, action, ctx)).finally(
        () => progress.close(),
      );
      out.result(r, (x) =>
        'handed_to' in x && x.handed_to
          ? `${action} requested: the running canary (pid ${x.handed_to}) acts on it at its next check`
          : `${x.canary_id}: ${x.state.message}`,
      );
      return action === 'resume' && r.state.status !== 'completed' ? 'checkFailed' : undefined;
    },
  });
}

export const promote = decide('promote');
export const abort = decide('abort');
export const resume = decide('resume');
