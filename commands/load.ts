import { type Command, Option } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { resolveFleet } from '../src/cli/fleet.js';
import {
  durationFlag,
  intFlag,
  shared,
  withConfigOptions,
  withJson,
  withRttBudget,
} from '../src/cli/options.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { EXCHANGE_THRESHOLDS } from '../src/ops/agent/exchange.js';
import { iceServers } from '../src/ops/agent/ice.js';
import { runLoad, runLoadWorker } from '../src/ops/agent/load.js';
import { launchWorkerProcess, serveWorker } from '../src/ops/agent/load-process.js';
import { agentSignalingUrls } from '../src/ops/fleet/fleet.js';
import { type LoadFlags, renderLoad } from '../src/ui/load.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withRttBudget(withJson(withConfigOptions(cmd)))
    .option('--agents <n>', 'temporary agents (every pair exchanges pings)', '4')
    .option('--processes <n>', 'spread the agents over this many processes', '1')
    .option('--duration <duration>', 'how long each pair sends (10s, 2m)', '10s')
    .option('--rate <n>', 'signed pings per second on each pair', '10')
    .option('--ping-timeout <duration>', 'a ping unanswered after this long is lost', '5s')
    .option(
      '--min-delivery <ratio>',
      'fail below this delivered ratio',
      String(EXCHANGE_THRESHOLDS.delivery_ratio),
    )
    .option('--form-timeout <duration>', 'time allowed for the mesh to form', '30s')
    .addOption(shared('signaling'))
    .option('--stun <urls>', 'STUN URLs (default STUN_SERVERS)')
    .option('--loopback', 'gather only 127.0.0.1 candidates')
    .option('--insecure', 'accept a self-signed wss:// certificate')
    .addOption(shared('stage'))
    .addOption(shared('state-dir'))
    .addOption(
      new Option('--worker', 'one process of a multi-process run (started by ifmesh load)').hideHelp(),
    )
    .action(async (flags: LoadFlags) => {
      if (flags.worker) {
        io.claimSignal();
        return serveWorker(process.stdin, (l) => process.stdout.write(`${l}\n`), runLoadWorker, ctx.signal);
      }
      const agents = intFlag(flags.agents, '--agents', 2, 500);
      const processes = intFlag(flags.processes, '--processes', 1, Math.min(64, agents));
      const rate = intFlag(flags.rate, '--rate', 1, 1_000);
      const minDelivery = Number(flags.minDelivery);
      if (!(minDelivery >= 0 && minDelivery <= 1))
        throw new UsageError(
          `--min-delivery ${flags.minDelivery} is not a ratio from 0 to 1`,
          'e.g. --min-delivery 0.999',
        );
      const { loaded, fleet } = await resolveFleet(ctx, flags);
      const out = io.output(flags);
      const report = await runLoad({
        agents,
        processes,
        rate,
        durationMs: durationFlag(flags.duration, '--duration'),
        pingTimeoutMs: durationFlag(flags.pingTimeout, '--ping-timeout'),
        formTimeoutMs: durationFlag(flags.formTimeout, '--form-timeout'),
        thresholds: {
          ...EXCHANGE_THRESHOLDS,
          delivery_ratio: minDelivery,
          rtt_p95_ms: durationFlag(flags.maxRttP95, '--max-rtt-p95'),
        },
        signalingUrls: agentSignalingUrls(fleet),
        iceServers: iceServers(loaded.config, { stun: flags.stun ?? fleet.stun[0], turn: '' }),
        loopbackOnly: Boolean(flags.loopback),
        rejectUnauthorized: !flags.insecure,
        ca: ctx.tls?.ca,
        clock: ctx.clock,
        signal: ctx.signal,
        launch: (spec, hooks) =>
          processes === 1
            ? runLoadWorker(spec, { ...hooks, clock: ctx.clock, signal: ctx.signal })
            : launchWorkerProcess(spec, hooks, ctx.signal),
        onProgress: (line) => out.info(line),
      });
      out.result(report, renderLoad);
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    });
}
