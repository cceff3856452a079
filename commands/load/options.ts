import { isIP, isIPv4 } from 'node:net';
import type { Context } from '../../src/cli/context.js';
import type { Resolved } from '../../src/cli/define.js';
import { durationFlag, intFlag } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import { iceServers } from '../../src/ops/agent/ice.js';
import { type LoadOptions, runLoadWorker } from '../../src/ops/agent/load.js';
import { launchSignalingWorkerProcess, launchWorkerProcess } from '../../src/ops/agent/load-process.js';
import type { SignalingLoadOptions } from '../../src/ops/agent/signaling-load.js';
import { runSignalingWorker } from '../../src/ops/agent/signaling-load-worker.js';
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
  for (const [flag, value] of [
    ['--source-addresses', flags.sourceAddresses],
    ['--inflight', flags.inflight],
  ] as const)
    if (value !== undefined) throw new UsageError(`${flag} applies only with --signaling-only`);
  const agents = intFlag(flags.agents, '--agents', 2, 500);
  const processes = intFlag(flags.processes, '--processes', 1, Math.min(64, agents));
  const rate = intFlag(flags.rate, '--rate', 1, 1_000);
  const minDelivery = deliveryFlag(flags.minDelivery);
  return {
    agents,
    processes,
    rate,
    ...shared(flags, ctx),
    thresholds: {
      ...EXCHANGE_THRESHOLDS,
      delivery_ratio: minDelivery,
      rtt_p95_ms: durationFlag(flags.maxRttP95, '--max-rtt-p95'),
    },
    signalingUrls: agentSignalingUrls(fleet),
    iceServers: iceServers(loaded.config, { stun: flags.stun ?? fleet.stun[0], turn: '' }),
    loopbackOnly: Boolean(flags.loopback),
    launch: (spec, hooks) =>
      processes === 1
        ? runLoadWorker(spec, { ...hooks, clock: ctx.clock, signal: ctx.signal })
        : launchWorkerProcess(spec, hooks, ctx.signal),
    onProgress,
  };
}

/** What both kinds of run take alike: the phases' times, TLS trust, the clock and the abort signal. */
function shared(flags: LoadFlags, ctx: Context) {
  return {
    durationMs: durationFlag(flags.duration, '--duration'),
    pingTimeoutMs: durationFlag(flags.pingTimeout, '--ping-timeout'),
    formTimeoutMs: durationFlag(flags.formTimeout, '--form-timeout'),
    rejectUnauthorized: !flags.insecure,
    ca: ctx.tls?.ca,
    clock: ctx.clock,
    signal: ctx.signal,
  };
}

function deliveryFlag(value: string): number {
  const ratio = Number(value);
  if (!(ratio >= 0 && ratio <= 1))
    throw new UsageError(`--min-delivery ${value} is not a ratio from 0 to 1`, 'e.g. --min-delivery 0.999');
  return ratio;
}

/** Source addresses: a comma-separated list of IPs, each IPv4 one possibly a last-octet range (127.0.0.2-17). */
export function sourceAddressesFlag(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(',').flatMap((item) => {
    const range = /^(\d+\.\d+\.\d+\.)(\d+)-(\d+)$/.exec(item.trim());
    if (
      range &&
      isIPv4(`${range[1]}${range[2]}`) &&
      isIPv4(`${range[1]}${range[3]}`) &&
      +range[2]! <= +range[3]!
    )
      return Array.from({ length: +range[3]! - +range[2]! + 1 }, (_, i) => `${range[1]}${+range[2]! + i}`);
    if (isIP(item.trim())) return [item.trim()];
    throw new UsageError(
      `--source-addresses ${value}: "${item}" is not an IP address or a range like 127.0.0.2-17`,
      'e.g. --source-addresses 127.0.0.2-17 (loopback addresses need no set-up on Linux)',
    );
  });
}

/** `load --signaling-only`'s run from its flags (a bad one is a usage error naming it) and the fleet. */
export function signalingLoadOptions(
  flags: LoadFlags,
  { fleet }: Resolved<'fleet'>,
  ctx: Context,
  onProgress: (line: string) => void,
): SignalingLoadOptions {
  const agents = intFlag(flags.agents, '--agents', 2, 200_000);
  const processes = intFlag(flags.processes, '--processes', 1, Math.min(64, Math.floor(agents / 2)));
  const signalingUrls = agentSignalingUrls(fleet);
  if (signalingUrls.length === 0)
    throw new UsageError(
      'no signaling URL to load',
      'pass --signaling ws://HOST:PORT or a --state-dir with a fleet',
    );
  return {
    agents,
    processes,
    rate: intFlag(flags.rate, '--rate', 0, 1_000),
    inflight: intFlag(flags.inflight ?? '0', '--inflight', 0, 1_000_000),
    sourceAddresses: sourceAddressesFlag(flags.sourceAddresses),
    ...shared(flags, ctx),
    thresholds: {
      delivery_ratio: deliveryFlag(flags.minDelivery),
      relay_p95_ms: durationFlag(flags.maxRttP95, '--max-rtt-p95'),
    },
    signalingUrls,
    launch: (spec, hooks) =>
      processes === 1
        ? runSignalingWorker(spec, { ...hooks, clock: ctx.clock, signal: ctx.signal })
        : launchSignalingWorkerProcess(spec, hooks, ctx.signal),
    onProgress,
  };
}
