import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { resolveFleet } from '../src/cli/fleet.js';
import {
  durationFlag,
  intFlag,
  rttBudgetMs,
  shared,
  withConfigOptions,
  withJson,
  withRttBudget,
} from '../src/cli/options.js';
import { ExitCode } from '../src/errors.js';
import { type ExchangeOptions, messageExchange } from '../src/ops/agent/exchange.js';
import { iceServers } from '../src/ops/agent/ice.js';
import { openWitness } from '../src/ops/events.js';
import { agentSignalingUrls } from '../src/ops/fleet/fleet.js';
import { STEP_TITLES, verifyDeployment } from '../src/ops/verify/deployment.js';
import { createProgress } from '../src/ui/progress.js';
import { renderExchange, renderVerify, type VerifyFlags } from '../src/ui/verify.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withRttBudget(withJson(withConfigOptions(cmd)))
    .option('--deployment-id <id>', 'tag every witness event of this run with the deployment id')
    .option('--retries <n>', 'attempts per step (signaling health, agents, connections)', '30')
    .option('--interval <duration>', 'wait between attempts (5s, 500ms)', '5s')
    .option(
      '--message-exchange',
      "only the fourth step: temporary agents exchange signed pings over every pair (the runbook's test-message-exchange.js)",
    )
    .option('--agents <n>', 'temporary agents for the message exchange', '3')
    .option('--messages <n>', 'signed pings per pair', '100')
    .addOption(shared('signaling'))
    .addOption(shared('witness'))
    .option('--stun <urls>', 'STUN URLs (default STUN_SERVERS)')
    .option('--loopback', 'gather only 127.0.0.1 candidates')
    .option('--insecure', 'accept a self-signed wss:// certificate')
    .option('--timeout <duration>', 'time allowed for the exchange mesh to form', '20s')
    .addOption(shared('stage'))
    .addOption(shared('state-dir'))
    .action(async (flags: VerifyFlags) => {
      const n = intFlag(flags.agents, '--agents', 2, 50);
      const m = intFlag(flags.messages, '--messages', 1, 100_000);
      const retries = intFlag(flags.retries, '--retries', 1, 10_000);
      const intervalMs = durationFlag(flags.interval, '--interval');
      const maxRttP95Ms = rttBudgetMs(flags.maxRttP95);
      const formTimeoutMs = durationFlag(flags.timeout, '--timeout', { min: 1_000 });
      const { loaded, state, fleet } = await resolveFleet(ctx, flags);
      const out = io.output(flags);
      const urls = agentSignalingUrls(fleet);
      const w = { url: fleet.witness.url, apiKey: fleet.witness.api_key };
      const exchange = (o: Pick<ExchangeOptions, 'events' | 'witness'>) =>
        messageExchange({
          ...o,
          clock: ctx.clock,
          signalingUrls: urls,
          iceServers: iceServers(loaded.config, {
            stun: flags.stun ?? fleet.stun[0],
            turn: '',
          }),
          agents: n,
          messages: m,
          loopbackOnly: Boolean(flags.loopback),
          formTimeoutMs,
          rejectUnauthorized: !flags.insecure,
          ca: ctx.tls?.ca,
          dispatcher: ctx.dispatcher,
          onProgress: (line) => out.info(line),
          maxRttP95Ms,
        });
      if (flags.messageExchange) {
        const report = await exchange({ witness: w.apiKey ? { ...w, state } : undefined });
        out.result(report, renderExchange);
        if (!report.ok) io.setExitCode(ExitCode.checkFailed);
        return;
      }
      const witness = openWitness({ ...w, state }, `verify-${flags.deploymentId ?? 'adhoc'}`, ctx);
      if (!witness) out.warn('IF_WITNESS_API_KEY is not set: this verification is not logged to the witness');
      const progress = await createProgress(ctx, Boolean(flags.json));
      const report = await verifyDeployment(ctx, {
        // Every instance and the front door: each must answer /health.
        signalingHttp: [
          ...fleet.signaling.map((x) => x.http),
          ...(fleet.front_door ? [fleet.front_door.http] : []),
        ],
        deploymentId: flags.deploymentId,
        retries,
        intervalMs,
        exchange: (events) => exchange({ events }),
        witness,
        onStep: (s) => {
          if (s.status === 'skipped') return;
          progress.step(STEP_TITLES[s.name], s.status, 'detail' in s ? s.detail : undefined);
        },
      })
        .finally(() => progress.close())
        .finally(() => witness?.close());
      out.result(report, renderVerify);
      if (report.exit_code !== 0) io.setExitCode(report.exit_code);
    });
}
