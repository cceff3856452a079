import path from 'node:path';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import {
  type ConfigFlags,
  durationFlag,
  intFlag,
  shared,
  withConfigOptions,
  withJson,
} from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { loadAgentConfig } from '../src/config/agent-config.js';
import { UsageError } from '../src/errors.js';
import { runAgents } from '../src/ops/agent/run.js';
import { agentSignalingUrls, loadFleet } from '../src/ops/fleet/fleet.js';
import { resolveWitness } from '../src/ops/shared.js';
import { resolveState } from '../src/state/state-dir.js';

interface Flags extends ConfigFlags {
  id?: string;
  key?: string;
  count?: string;
  prefix: string;
  signaling?: string;
  stun?: string;
  turn?: string;
  turnUser?: string;
  turnPass?: string;
  icePolicy?: string;
  mesh?: string;
  loopback?: boolean;
  iceAddress?: string;
  insecure?: boolean;
  stateDir?: string;
  witness?: string;
  heartbeatTimeout: string;
  healingBase: string;
  json?: boolean;
}

const common = (c: Command) =>
  withJson(withConfigOptions(c))
    .addOption(shared('signaling'))
    .option('--stun <urls>', 'STUN URLs (default STUN_SERVERS); werift needs a reachable one')
    .option('--turn <urls>', 'TURN URLs, most preferred first (default TURN_SERVERS)')
    .option('--turn-user <user>', 'TURN username (default TURN_USERNAME)')
    .option('--turn-pass <password>', 'TURN password (default TURN_PASSWORD)')
    .option('--ice-policy <policy>', 'all or relay (default ICE_TRANSPORT_POLICY)')
    .option('--mesh <name>', 'join this named mesh instead of the default one')
    .option('--loopback', 'gather only 127.0.0.1 candidates (single-machine meshes and tests)')
    .option(
      '--ice-address <list>',
      'gather host candidates only on these IPv4 addresses or interfaces, comma-separated (default AGENT_ICE_ADDRESSES; empty: all)',
    )
    .option('--insecure', 'accept a self-signed wss:// certificate')
    .addOption(shared('state-dir'))
    .addOption(shared('witness'))
    .option('--heartbeat-timeout <duration>', 'a peer silent this long is partitioned', '30s')
    .option(
      '--healing-base <duration>',
      'first reconnection delay when healing (then ×2, 10 attempts)',
      '1s',
    );

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const start = async (flags: Flags, ids: string[], keyFile: string | undefined) => {
    const loaded = await loadCommandConfig(ctx, flags);
    const out = io.output(flags);
    for (const w of loaded.warnings) out.warn(w);
    const policy = flags.icePolicy ?? loaded.config.iceTransportPolicy;
    if (policy !== 'all' && policy !== 'relay')
      throw new UsageError(`--ice-policy ${policy} is not all or relay`);
    io.claimSignal();
    const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
    const fleet = loadFleet(state, loaded, { signaling: flags.signaling ?? ctx.env.IFMESH_SIGNALING_URL });
    await runAgents(
      {
        ids,
        keyFile: keyFile ? path.resolve(ctx.cwd, keyFile) : undefined,
        config: resolveWitness(loaded, flags.witness, state),
        signalingUrls: agentSignalingUrls(fleet),
        // The state's own STUN/TURN (what `up` runs) when neither flags nor the config name any,
        // so no TURN password has to be on a command line.
        ice: {
          stun: flags.stun ?? (fleet.stun.join(',') || undefined),
          turn: flags.turn ?? (fleet.turn.join(',') || undefined),
          turnUser: flags.turnUser ?? fleet.turn_credentials?.username,
          turnPass: flags.turnPass ?? fleet.turn_credentials?.password,
        },
        icePolicy: policy,
        mesh: flags.mesh,
        loopbackOnly: Boolean(flags.loopback),
        iceAddresses: flags.iceAddress
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        rejectUnauthorized: !flags.insecure,
        ca: ctx.tls?.ca,
        heartbeatTimeoutMs: durationFlag(flags.heartbeatTimeout, '--heartbeat-timeout', { min: 50 }),
        healingBaseMs: durationFlag(flags.healingBase, '--healing-base', { min: 50 }),
        state,
        log: (line) => ctx.stderr.write(`${line}\n`),
      },
      ctx,
      (ready) => {
        if (flags.json) ctx.stdout.write(`${JSON.stringify(ready)}\n`);
        else ctx.stderr.write(`${ready.agents.length} agent(s) registered with ${ready.signaling}\n`);
      },
    );
  };

  common(
    cmd
      .command('run')
      .description('run one agent until SIGTERM: mesh, signed messages, TURN fallback, reports'),
  )
    .option('--id <agent>', 'agent id')
    .option('--key <file>', 'identity file from `ifmesh keys generate`')
    .addHelpText(
      'after',
      '\n--config FILE.json reads an agent config (config/agents/<id>.json); flags override it.\n',
    )
    .action(async (flags: Flags) => {
      if (flags.config?.endsWith('.json')) {
        const ac = await loadAgentConfig(path.resolve(ctx.cwd, flags.config), flags.config);
        flags.config = undefined;
        flags.id ??= ac.agentId;
        flags.key ??= ac.keyFile;
        flags.signaling ??= ac.signaling?.join(',');
        flags.stun ??= ac.stun?.join(',');
        flags.turn ??= ac.turn?.join(',');
        flags.icePolicy ??= ac.icePolicy;
        flags.mesh ??= ac.mesh;
        flags.loopback ??= ac.loopback || undefined;
      }
      if (!flags.id || !flags.key)
        throw new UsageError('agent run needs --id and --key (or --config config/agents/<id>.json)');
      return start(flags, [flags.id], flags.key);
    });

  common(cmd.command('swarm').description('run N agents in one process (tests, load)'))
    .requiredOption('--count <n>', 'how many agents')
    .option('--prefix <name>', 'agent ids are <prefix>-1 … <prefix>-N', 'agent')
    .action((flags: Flags) => {
      const n = intFlag(flags.count ?? '', '--count', 1, 500);
      return start(
        flags,
        Array.from({ length: n }, (_, i) => `${flags.prefix}-${i + 1}`),
        undefined,
      );
    });
}
