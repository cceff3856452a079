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
    const [{ setBlocked, instancesReached }, { fleetAgents }] = await Promise.all([
      import('../../src/ops/troubleshoot/agents.js'),
      import('../../src/ops/troubleshoot/run.js'),
    ]);
    const r = await setBlocked(await targets(flags, needs, ctx), 'block', checked(id), flags.reason, ctx);
    // An id blocked ahead of its first registration is allowed, but a typo blocks nobody: say so.
    const known = Boolean(r.entry?.key_id) || (await fleetAgents(needs.state)).includes(r.agent_id);
    out.result({ ...r, known }, (x, c) =>
      [
        `${c.green('✓')} ${x.agent_id} blocked (key ${x.entry?.key_id ?? 'unknown: not registered now'}), ${x.disconnected} connection(s) closed, ${instancesReached(x.instances)} instance(s)`,
        ...(x.known
          ? []
          : [
              c.yellow(
                `! ${x.agent_id} is not registered now and is no agent of this fleet (its release, its recorded agents): a typo? ifmesh agents unblock ${x.agent_id} lifts the block`,
              ),
            ]),
      ].join('\n'),
    );
  },
});
