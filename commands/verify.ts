import type { Command } from 'commander';
import { type ConfigFlags, intFlag, shared, withConfigOptions, withJson } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { signalingUrls, stackStun, witnessEndpoint } from '../src/config/endpoints.js';
import { loadConfig } from '../src/config/load.js';
import { resolveStateDir } from '../src/config/state.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { messageExchange } from '../src/ops/agent/exchange.js';
import { iceServers } from '../src/ops/agent/ice.js';

interface Flags extends ConfigFlags {
  messageExchange?: boolean;
  agents: string;
  messages: string;
  signaling?: string;
  witness?: string;
  stun?: string;
  loopback?: boolean;
  insecure?: boolean;
  timeout: string;
  stateDir?: string;
  json?: boolean;
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(withConfigOptions(cmd))
    .option(
      '--message-exchange',
      "temporary agents exchange signed pings over every pair (the runbook's test-message-exchange.js)",
    )
    .option('--agents <n>', 'temporary agents', '3')
    .option('--messages <n>', 'signed pings per pair', '100')
    .addOption(shared('signaling'))
    .addOption(shared('witness'))
    .option('--stun <urls>', 'STUN URLs (default STUN_SERVERS)')
    .option('--loopback', 'gather only 127.0.0.1 candidates')
    .option('--insecure', 'accept a self-signed wss:// certificate')
    .option('--timeout <ms>', 'time allowed for the mesh to form', '20000')
    .addOption(shared('state-dir'))
    .action(async (flags: Flags) => {
      if (!flags.messageExchange)
        throw new UsageError('choose what to verify', 'ifmesh verify --message-exchange');
      const n = intFlag(flags.agents, '--agents', 2, 50);
      const m = intFlag(flags.messages, '--messages', 1, 100_000);
      const loaded = await loadConfig({ cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set });
      const stateDir = resolveStateDir(ctx.cwd, ctx.env, flags.stateDir);
      const out = io.output(flags);
      const w = witnessEndpoint(flags.witness, loaded, stateDir);
      const report = await messageExchange({
        witness: w.apiKey ? { ...w, stateDir } : undefined,
        clock: ctx.clock,
        signalingUrls: signalingUrls(flags.signaling, ctx.env, loaded.config, stateDir),
        iceServers: iceServers(loaded.config, { stun: flags.stun ?? stackStun(loaded, stateDir), turn: '' }),
        agents: n,
        messages: m,
        loopbackOnly: Boolean(flags.loopback),
        formTimeoutMs: Number(flags.timeout) || 20_000,
        rejectUnauthorized: !flags.insecure,
        onProgress: (line) => out.info(line),
      });
      out.result(report, (r, c) =>
        [
          `${r.ok ? c.green('✓ message exchange passed') : c.red('✗ message exchange failed')}: ${r.agents} agents, ${r.pairs} pairs`,
          `  delivered ${r.pongs_received}/${r.pings_sent} (${(r.delivery_ratio * 100).toFixed(2)} %), RTT p50 ${r.rtt_ms.p50?.toFixed(2) ?? '-'} ms, p95 ${r.rtt_ms.p95?.toFixed(2) ?? '-'} ms`,
          `  ${Math.round(r.messages_per_second)} signed messages/s, ${r.signature_failures} signature failures, mesh formed in ${r.mesh_formed_ms} ms`,
          ...r.failures.map((f) => c.red(`  ${f}`)),
        ].join('\n'),
      );
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    });
}
