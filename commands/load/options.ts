import type { Context } from '../../src/cli/context.js';
import type { Resolved } from '../../src/cli/define.js';
import { durationFlag, intFlag } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import { iceServers } from '../../src/ops/agent/ice.js';
import { type LoadOptions, runLoadWorker } from '../../src/ops/agent/load.js';
import { launchWorkerProcess } from '../../src/ops/agent/load-process.js';
import { EXCHANGE_THRESHOLDS } from '../../src/ops/agent/thresholds.js';
import { agentSignalingUrls } from '../../src/ops/fleet/fleet.js';
import type { LoadFlags } from '../../src/ui/load.js';

/** `load`'s run from its flags (validated: a bad one is a usage error naming it) and the fleet. */
export function loadOptions(
  flags: LoadFlags,
  { config: loaded, fleet }: Resolved<'fleet'>,
  ctx: Context,
  onProgress: (line: string) => void,
): LoadOptions {
  const agents = intFlag(flags.agents, '--agents', 2, 500);
  const processes = intFlag(flags.processes, '--processes', 1, Math.min(64, agents));
  const rate = intFlag(flags.rate, '--rate', 1, 1_000);
  const minDelivery = Number(flags.minDelivery);
  if (!(minDelivery >= 0 && minDelivery <= 1))
    throw new UsageError(
      `--min-delivery ${flags.minDelivery} is not a ratio from 0 to 1`,
      'e.g. --min-delivery 0.999',
    );
  return {
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
    onProgress,
  };
}
