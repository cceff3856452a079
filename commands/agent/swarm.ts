import { defineCommand } from '../../src/cli/define.js';
import { intFlag } from '../../src/cli/options.js';
import { AGENT_FLAGS, type AgentFlags } from './flags.js';

export default defineCommand<AgentFlags>({
  path: 'agent swarm',
  summary: 'run N agents in one process (tests, load)',
  examples: [
    'ifmesh agent swarm --count 8 --signaling ws://127.0.0.1:8443 --stun stun:127.0.0.1:3478 --loopback',
  ],
  flags: [
    ...AGENT_FLAGS,
    { flags: '--count <n>', description: 'how many agents', required: true },
    { flags: '--prefix <name>', description: 'agent ids are <prefix>-1 … <prefix>-N', default: 'agent' },
  ],
  async run({ flags, io }) {
    const n = intFlag(flags.count ?? '', '--count', 1, 500);
    const { startAgents } = await import('./start.js');
    const ids = Array.from({ length: n }, (_, i) => `${flags.prefix}-${i + 1}`);
    await startAgents(flags, ids, undefined, io);
  },
});
