import { defineCommand } from '../../src/cli/define.js';
import { AGENTS_FLAGS, type AgentsFlags, targets } from './targets.js';

export default defineCommand<AgentsFlags, [], 'config' | 'state'>({
  path: 'agents list',
  summary: 'the blocked identities',
  examples: ['ifmesh agents list'],
  flags: AGENTS_FLAGS,
  needs: ['config', 'state'],
  async run({ flags, needs, ctx, out }) {
    const { listBlocked } = await import('../../src/ops/troubleshoot/agents.js');
    const r = await listBlocked(await targets(flags, needs, ctx), ctx);
    out.result(r, (x) =>
      x.blocked.length
        ? x.blocked.map((e) => `${e.agent_id}  ${e.key_id ?? '-'}  ${e.blocked_at}  ${e.reason}`).join('\n')
        : 'no blocked agents',
    );
  },
});
