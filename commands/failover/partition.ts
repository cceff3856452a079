import { durationFlag } from '../../src/cli/options.js';
import type { FailoverFlags } from './flags.js';
import { scenario } from './scenario.js';

export default scenario<FailoverFlags & { agent?: string; stagger: string }>(
  'C',
  {
    name: 'partition',
    summary: 'Scenario C: manual mesh healing with staggered reconnections',
    example: 'ifmesh failover partition --agent agent-3 --stagger 2s',
    flags: [
      {
        flags: '--agent <id>',
        description: "heal this agent's links (default: every pair not reported connected)",
      },
      {
        flags: '--stagger <duration>',
        description: 'wait between one agent’s reconnections and the next one’s',
        default: '500ms',
      },
    ],
  },
  async (flags, s, id) => {
    const { planPartitionFailover } = await import('../../src/ops/failover/scenarios.js');
    return planPartitionFailover({
      failoverId: id,
      signaling: s.urls,
      agent: flags.agent,
      staggerMs: durationFlag(flags.stagger, '--stagger', { min: 0, max: 60_000 }),
    });
  },
);
