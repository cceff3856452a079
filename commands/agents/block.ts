import { defineCommand } from '../../src/cli/define.js';
import { showPlan } from './plan.js';
import { AGENTS_FLAGS, type AgentsFlags, checked, targets } from './targets.js';

export default defineCommand<AgentsFlags, [string], 'config' | 'state'>({
  path: 'agents block',
  summary:
    'refuse an identity (its id and key): every signaling instance disconnects it and will not register it again',
  examples: ['ifmesh agents block agent-7 --reason signature-failures'],
  args: [{ name: '<id>' }],
  flags: [
    { flags: '--reason <text>', description: 'why, recorded in the block list and the witness event' },
    {
      flags: '--dry-run',
      description: 'show which instances would be asked and which holds the agent; change nothing',
    },
    ...AGENTS_FLAGS,
  ],
  needs: ['config', 'state'],
  async run({ args: [id], flags, needs, ctx, out }) {
    if (flags.dryRun) {
      await showPlan('block', id, flags, needs, ctx, out);
      return;
    }
    const { setBlocked, instancesReached } = await import('../../src/ops/troubleshoot/agents.js');
    const r = await setBlocked(await targets(flags, needs, ctx), 'block', checked(id), flags.reason, ctx);
    out.result(
      r,
      (x, c) =>
        `${c.green('✓')} ${x.agent_id} blocked (key ${x.entry?.key_id ?? 'unknown: not registered now'}), ${x.disconnected} connection(s) closed, ${instancesReached(x.instances)} instance(s)`,
    );
  },
});
