import { defineCommand } from '../../src/cli/define.js';
import { UsageError } from '../../src/errors.js';
import { AGENT_FLAGS, type AgentFlags } from './flags.js';

export default defineCommand<AgentFlags>({
  path: 'agent run',
  summary: 'run one agent until SIGTERM: mesh, signed messages, TURN fallback, reports',
  examples: [
    'ifmesh agent run --id agent-1 --key keys/agent-1.key --signaling ws://127.0.0.1:8443,ws://127.0.0.1:8444',
  ],
  flags: [
    ...AGENT_FLAGS,
    { flags: '--id <agent>', description: 'agent id' },
    { flags: '--key <file>', description: 'identity file from `ifmesh keys generate`' },
  ],
  helpAfter: () =>
    '\n--config FILE.json reads an agent config (config/agents/<id>.json); flags override it.\n',
  async run({ flags, ctx, io }) {
    const { withAgentConfig, startAgents } = await import('./start.js');
    const f = await withAgentConfig(flags, ctx.cwd);
    if (!f.id || !f.key)
      throw new UsageError('agent run needs --id and --key (or --config config/agents/<id>.json)');
    await startAgents(f, [f.id], f.key, io);
  },
});
