import path from 'node:path';
import type { Context } from '../../src/cli/context.js';
import { type ConfigFlags, durationFlag, intFlag } from '../../src/cli/options.js';
import type { MeshConfig } from '../../src/config/load.js';
import { UsageError } from '../../src/errors.js';
import { parseThresholds } from '../../src/ops/monitoring/thresholds.js';
import type { CanaryOptions } from '../../src/ops/rollout/canary-plan.js';
import { PROMOTION_GATES } from '../../src/ops/rollout/promotion.js';
import { resolveState, type StateDir } from '../../src/state/state-dir.js';
import type { Progress } from '../../src/ui/progress.js';

export interface CanaryFlags extends ConfigFlags {
  canaryAgents?: string;
  force?: boolean;
  steps: string;
  monitor: string;
  interval: string;
  failureLimit: string;
  consecutiveErrorLimit: string;
  optionalGate?: string[];
  threshold?: string[];
  freezeOnFailure?: boolean;
  registerTimeout: string;
  agentsDir?: string;
  release?: string;
  label?: string;
  keepReleases: string;
  dryRun?: boolean;
  stateDir?: string;
  witness?: string;
  json?: boolean;
  watch?: boolean;
  timeout: string;
}

/** runCanary's options from the flags (validated: a bad one is a usage error naming it). */
export function canaryOptions(
  flags: CanaryFlags,
  gate: string | undefined,
  { state, config, progress }: { state: StateDir; config: MeshConfig; progress: Progress },
  ctx: Context,
): CanaryOptions {
  return {
    state,
    stage: flags.stage,
    promotion: gate
      ? {
          stage: flags.stage!,
          gateState: resolveState(ctx.cwd, ctx.env, flags.stateDir, gate),
          force: Boolean(flags.force),
        }
      : undefined,
    canaryAgents: flags.canaryAgents ? intFlag(flags.canaryAgents, '--canary-agents', 1) : undefined,
    steps: flags.steps.split(','),
    monitorMs: durationFlag(flags.monitor, '--monitor'),
    intervalMs: durationFlag(flags.interval, '--interval', { min: 50 }),
    failureLimit: intFlag(flags.failureLimit, '--failure-limit', 0, 1000),
    consecutiveErrorLimit: intFlag(flags.consecutiveErrorLimit, '--consecutive-error-limit', 1, 1000),
    optionalGates: flags.optionalGate ?? [],
    thresholds: parseThresholds(flags.threshold),
    freezeOnFailure: Boolean(flags.freezeOnFailure),
    registerTimeoutMs: durationFlag(flags.registerTimeout, '--register-timeout', { min: 100 }),
    set: flags.set ?? {},
    agentsDir: flags.agentsDir ? path.resolve(ctx.cwd, flags.agentsDir) : undefined,
    release: flags.release,
    label: flags.label,
    keepReleases: intFlag(flags.keepReleases, '--keep-releases', 1, 1000),
    config,
    cwd: ctx.cwd,
    progress,
  };
}

/** --force lifts only a gated stage's promotion check (--stage production). */
export function checkForce(force: boolean, gate: string | undefined): void {
  if (force && !gate)
    throw new UsageError(
      '--force only lifts the promotion check of a gated stage',
      `use it with ${Object.keys(PROMOTION_GATES)
        .map((s) => `--stage ${s}`)
        .join(' or ')}`,
    );
}
