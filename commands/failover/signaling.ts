import { durationFlag } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import type { FailoverFlags } from './flags.js';
import { scenario } from './scenario.js';

type Flags = FailoverFlags & { failed?: string; action: string; stabilize: string };

export default scenario<Flags>(
  'B',
  {
    name: 'signaling',
    summary: 'Scenario B: restart a dead signaling instance or promote the backup, then watch it stabilise',
    example:
      'ifmesh failover signaling --stabilize 5m   # the dead instance; or --failed ws://127.0.0.1:8444',
    flags: [
      {
        flags: '--failed <url>',
        description:
          'the signaling instance that failed (ws://127.0.0.1:PORT); default for restart: the one recorded instance whose process is gone or that leaves /health unanswered 3 times over 2 s',
      },
      {
        flags: '--action <action>',
        description:
          'restart (the dead instance, from its process record) or promote-backup (nginx backup → active)',
        default: 'restart',
      },
      {
        flags: '--stabilize <duration>',
        description: 'how long the restarted instance must stay healthy',
        default: '5m',
      },
    ],
  },
  async (flags, s, id, ctx) => {
    const { failedSignalingInstance, planPromoteBackup, planSignalingFailover } = await import(
      '../../src/ops/failover/scenarios.js'
    );
    const stabilizeMs = durationFlag(flags.stabilize, '--stabilize', { min: 0, max: 3_600_000 });
    if (flags.action !== 'restart' && flags.action !== 'promote-backup')
      throw new UsageError(`--action ${flags.action} is not known`, 'use --action restart or promote-backup');
    if (flags.action === 'promote-backup') {
      // Which instance nginx sends to is nginx's plan, not the process records: name it.
      if (!flags.failed)
        throw new UsageError(
          '--action promote-backup needs the failed active instance',
          'name it: --failed URL (ifmesh status lists them)',
        );
      return planPromoteBackup({
        failoverId: id,
        state: s.state,
        signaling: s.urls,
        failed: flags.failed,
        stabilizeMs,
      });
    }
    const found = flags.failed
      ? undefined
      : await failedSignalingInstance(s.state, { clock: ctx.clock, dispatcher: ctx.dispatcher });
    return planSignalingFailover({
      failoverId: id,
      state: s.state,
      signaling: s.urls,
      failed: flags.failed ?? found!.url,
      stabilizeMs,
      detected: found?.why,
    });
  },
);
