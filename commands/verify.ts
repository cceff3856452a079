import path from 'node:path';
import type { Command } from 'commander';
import { type ConfigFlags, durationFlag, intFlag, withConfigOptions, withJson } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { WitnessClient } from '../src/clients/witness.js';
import { signalingUrls, stackStun, witnessEndpoint } from '../src/config/endpoints.js';
import { loadConfig } from '../src/config/load.js';
import { resolveStateDir } from '../src/config/state.js';
import { ExitCode } from '../src/errors.js';
import { messageExchange } from '../src/ops/agent/exchange.js';
import { iceServers } from '../src/ops/agent/ice.js';
import { STEP_TITLES, verifyDeployment } from '../src/ops/verify/deployment.js';
import { createProgress } from '../src/ui/progress.js';
import { renderExchange } from '../src/ui/verify.js';

interface Flags extends ConfigFlags {
  messageExchange?: boolean;
  deploymentId?: string;
  retries: string;
  interval: string;
  witness?: string;
  agents: string;
  messages: string;
  signaling?: string;
  stun?: string;
  loopback?: boolean;
  insecure?: boolean;
  timeout: string;
  stateDir?: string;
  json?: boolean;
}

const MARK = { ok: '✓', warn: '⚠', fail: '✗', skipped: '-' } as const;

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(withConfigOptions(cmd))
    .option('--deployment-id <id>', 'tag every witness event of this run with the deployment id')
    .option('--retries <n>', 'attempts per step (signaling health, agents, connections)', '30')
    .option('--interval <duration>', 'wait between attempts (5s, 500ms)', '5s')
    .option('--witness <url>', 'IF.witness base URL (default IF_WITNESS_ENDPOINT or the local stack)')
    .option(
      '--message-exchange',
      "only the fourth step: temporary agents exchange signed pings over every pair (the runbook's test-message-exchange.js)",
    )
    .option('--agents <n>', 'temporary agents for the message exchange', '3')
    .option('--messages <n>', 'signed pings per pair', '100')
    .option('--signaling <urls>', 'signaling URLs (default $IFMESH_SIGNALING_URL or the config)')
    .option('--stun <urls>', 'STUN URLs (default STUN_SERVERS)')
    .option('--loopback', 'gather only 127.0.0.1 candidates')
    .option('--insecure', 'accept a self-signed wss:// certificate')
    .option('--timeout <ms>', 'time allowed for the exchange mesh to form', '20000')
    .option('--state-dir <dir>', 'find the local stack here (default .ifmesh or $IFMESH_STATE_DIR)')
    .action(async (flags: Flags) => {
      const n = intFlag(flags.agents, '--agents', 2, 50);
      const m = intFlag(flags.messages, '--messages', 1, 100_000);
      const retries = intFlag(flags.retries, '--retries', 1, 10_000);
      const intervalMs = durationFlag(flags.interval, '--interval');
      const loaded = await loadConfig({ cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set });
      const stateDir = resolveStateDir(ctx.cwd, ctx.env, flags.stateDir);
      const out = io.output(flags);
      const urls = signalingUrls(flags.signaling, ctx.env, loaded.config, stateDir);
      const exchange = (events?: { log: WitnessClient['log'] }) =>
        messageExchange({
          signalingUrls: urls,
          iceServers: iceServers(loaded.config, {
            stun: flags.stun ?? stackStun(loaded, stateDir),
            turn: '',
          }),
          agents: n,
          messages: m,
          loopbackOnly: Boolean(flags.loopback),
          formTimeoutMs: Number(flags.timeout) || 20_000,
          rejectUnauthorized: !flags.insecure,
          events,
          onProgress: (line) => out.info(line),
        });
      if (flags.messageExchange) {
        const report = await exchange();
        out.result(report, renderExchange);
        if (!report.ok) io.setExitCode(ExitCode.checkFailed);
        return;
      }
      const w = witnessEndpoint(flags.witness, loaded, stateDir);
      const witness = w.apiKey
        ? new WitnessClient({
            url: w.url,
            apiKey: w.apiKey,
            producer: `verify-${flags.deploymentId ?? 'adhoc'}`,
            spoolDir: path.join(stateDir, 'witness-spool'),
            dispatcher: ctx.dispatcher,
            now: () => ctx.clock.now(),
          })
        : undefined;
      const progress = await createProgress(ctx, Boolean(flags.json));
      const report = await verifyDeployment(ctx, {
        signalingHttp: urls[0]!.replace(/^ws(s?):\/\//i, 'http$1://'),
        deploymentId: flags.deploymentId,
        retries,
        intervalMs,
        exchange,
        witness,
        onStep: (s) =>
          s.status === 'skipped' ||
          progress.step(
            STEP_TITLES[s.name],
            s.status === 'running' ? 'running' : s.status === 'fail' ? 'fail' : 'ok',
            'detail' in s ? s.detail : undefined,
          ),
      })
        .finally(() => progress.close())
        .finally(() => witness?.close());
      if (!witness) out.warn('IF_WITNESS_API_KEY is not set: the verification was not logged to the witness');
      out.result(report, (r, c) => {
        const paint = { ok: c.green, warn: c.yellow, fail: c.red, skipped: c.dim };
        return [
          ...r.steps.map(
            (s, i) =>
              `${paint[s.status](MARK[s.status])} ${i + 1}. ${STEP_TITLES[s.name]}${c.dim(` — ${s.detail}${s.attempts > 1 ? ` (attempt ${s.attempts})` : ''}`)}`,
          ),
          r.ok
            ? c.green(
                `deployment verified${r.deployment_id ? ` (ID: ${r.deployment_id})` : ''}, trace ${r.trace_id}`,
              )
            : c.red(
                `deployment verification failed${r.deployment_id ? ` (ID: ${r.deployment_id})` : ''}, trace ${r.trace_id}`,
              ),
        ].join('\n');
      });
      if (report.exit_code !== 0) io.setExitCode(report.exit_code);
    });
}
