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
          'the signaling instance that failed (ws://127.0.0.1:PORT); default: the one recorded instance that is dead or does not answer /health',
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
    const failed = flags.failed ?? (await failedSignalingInstance(s.state, ctx.dispatcher));
    const o = { failoverId: id, state: s.state, signaling: s.urls, failed, stabilizeMs };
    if (flags.action === 'promote-backup') return planPromoteBackup(o);
    if (flags.action !== 'restart')
      throw new UsageError(`--action ${flags.action} is not known`, 'use --action restart or promote-backup');
    return planSignalingFailover(o);
  },
);
