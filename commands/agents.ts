import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type ConfigFlags, withFlags } from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { toBase64url } from '../src/crypto/ed25519.js';
import { readPublicKey } from '../src/crypto/key-file.js';
import { UsageError } from '../src/errors.js';
import { resolveTargets } from '../src/ops/monitoring/monitor.js';
import {
  adminToken,
  listBlocked,
  planBlock,
  rebindAgent,
  setBlocked,
} from '../src/ops/troubleshoot/agents.js';
import { AGENT_ID_RULE, isAgentId } from '../src/protocol/ids.js';
import { resolveState } from '../src/state/state-dir.js';

type Flags = ConfigFlags & {
  json?: boolean;
  signaling?: string;
  stateDir?: string;
  reason?: string;
  dryRun?: boolean;
  key?: string;
};

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const targets = async (flags: Flags) => {
    const loaded = await loadCommandConfig(ctx, flags);
    const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
    return {
      signaling: resolveTargets(flags, ctx.env, loaded, state).signaling,
      token: adminToken(loaded, state),
    };
  };
  const checked = (id: string) => {
    if (!isAgentId(id))
      throw new UsageError(`"${String(id).slice(0, 64)}" is not an agent id: ${AGENT_ID_RULE}`);
    return id;
  };
  const plan = async (action: 'block' | 'unblock', id: string, flags: Flags) => {
    const p = await planBlock(await targets(flags), action, checked(id), flags.reason, ctx);
    io.output(flags).result(p, (x) =>
      [
        `would ${x.action} ${x.agent_id}${x.reason ? ` (${x.reason})` : ''} on:`,
        ...x.instances.map(
          (i) => `  ${i.url}${i.reachable ? '' : ' (unreachable)'}${i.holds_agent ? ' - holds it now' : ''}`,
        ),
      ].join('\n'),
    );
  };
  withFlags(
    cmd
      .command('block <id>')
      .description(
        'refuse an identity (its id and key): every signaling instance disconnects it and will not register it again',
      )
      .option('--reason <text>', 'why, recorded in the block list and the witness event')
      .option('--dry-run', 'show which instances would be asked and which holds the agent; change nothing'),
    'signaling',
    'state-dir',
    'config',
    'set',
    'json',
  ).action(async (id: string, flags: Flags) => {
    if (flags.dryRun) return plan('block', id, flags);
    const r = await setBlocked(await targets(flags), 'block', checked(id), flags.reason, ctx);
    io.output(flags).result(
      r,
      (x, c) =>
        `${c.green('✓')} ${x.agent_id} blocked (key ${x.entry?.key_id ?? 'unknown: not registered now'}), ${x.disconnected} connection(s) closed, ${x.instances.length} instance(s)`,
    );
  });
  withFlags(
    cmd
      .command('unblock <id>')
      .description('lift a block: the identity may register again')
      .option('--dry-run', 'show which instances would be asked; change nothing'),
    'signaling',
    'state-dir',
    'config',
    'set',
    'json',
  ).action(async (id: string, flags: Flags) => {
    if (flags.dryRun) return plan('unblock', id, flags);
    const r = await setBlocked(await targets(flags), 'unblock', checked(id), undefined, ctx);
    io.output(flags).result(
      r,
      (x, c) => `${c.green('✓')} ${x.agent_id} unblocked on ${x.instances.length} instance(s)`,
    );
  });
  withFlags(
    cmd
      .command('rebind <id>')
      .description(
        "bind an agent id to another key (the agent's key really changed): the old key is revoked everywhere and its connection closed",
      )
      .requiredOption('--key <key>', 'the new public key: base64url, or a .pub/.key file')
      .option('--reason <text>', 'why, recorded in the witness event'),
    'signaling',
    'state-dir',
    'config',
    'set',
    'json',
  ).action(async (id: string, flags: Flags) => {
    const key = await readPublicKey(flags.key!, ctx.cwd);
    if (key.agentId && key.agentId !== id)
      throw new UsageError(`${flags.key} is the key of ${key.agentId}, not ${checked(id)}`);
    const r = await rebindAgent(
      await targets(flags),
      checked(id),
      toBase64url(key.publicKey),
      flags.reason,
      ctx,
    );
    io.output(flags).result(r, (x, c) =>
      [
        `${c.green('✓')} ${x.agent_id} bound to key ${x.binding.key_id}${x.previous && x.previous.key_id !== x.binding.key_id ? ` (was ${x.previous.key_id}, now revoked)` : ''}, ${x.disconnected} connection(s) closed, ${x.instances.length} instance(s)`,
        "  agents that already knew the old key refuse the new one until they restart (they pin a peer's first key)",
      ].join('\n'),
    );
  });
  withFlags(
    cmd.command('list').description('the blocked identities'),
    'signaling',
    'state-dir',
    'config',
    'set',
    'json',
  ).action(async (flags: Flags) => {
    const r = await listBlocked(await targets(flags), ctx);
    io.output(flags).result(r, (x) =>
      x.blocked.length
        ? x.blocked.map((e) => `${e.agent_id}  ${e.key_id ?? '-'}  ${e.blocked_at}  ${e.reason}`).join('\n')
        : 'no blocked agents',
    );
  });
}
