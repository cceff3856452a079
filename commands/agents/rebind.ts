import { defineCommand } from '../../src/cli/define.js';
import { UsageError } from '../../src/errors.js';
import { AGENTS_FLAGS, type AgentsFlags, checked, targets } from './targets.js';

export default defineCommand<AgentsFlags & { key: string }, [string], 'config' | 'state'>({
  path: 'agents rebind',
  summary:
    "bind an agent id to another key (the agent's key really changed): the old key is revoked everywhere and its connection closed",
  examples: ['ifmesh agents rebind agent-7 --key keys/agent-7.pub --reason "key replaced"'],
  args: [{ name: '<id>' }],
  flags: [
    {
      flags: '--key <key>',
      description: 'the new public key: base64url, or a .pub/.key file',
      required: true,
    },
    { flags: '--reason <text>', description: 'why, recorded in the witness event' },
    ...AGENTS_FLAGS,
  ],
  needs: ['config', 'state'],
  async run({ args: [id], flags, needs, ctx, out }) {
    const [{ toBase64url }, { readPublicKey }, { rebindAgent, instancesReached }] = await Promise.all([
      import('../../src/crypto/ed25519.js'),
      import('../../src/crypto/key-file.js'),
      import('../../src/ops/troubleshoot/agents.js'),
    ]);
    const key = await readPublicKey(flags.key, ctx.cwd);
    if (key.agentId && key.agentId !== id)
      throw new UsageError(`${flags.key} is the key of ${key.agentId}, not ${checked(id)}`);
    const t = await targets(flags, needs, ctx);
    const r = await rebindAgent(t, checked(id), toBase64url(key.publicKey), flags.reason, ctx);
    out.result(r, (x, c) =>
      [
        `${c.green('✓')} ${x.agent_id} bound to key ${x.binding.key_id}${x.previous && x.previous.key_id !== x.binding.key_id ? ` (was ${x.previous.key_id}, now revoked)` : ''}, ${x.disconnected} connection(s) closed, ${instancesReached(x.instances)} instance(s)`,
        "  agents that already knew the old key refuse the new one until they restart (they pin a peer's first key)",
      ].join('\n'),
    );
  },
});
