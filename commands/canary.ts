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
import { ExitCode, UsageError } from '../src/errors.js';
import { parseThresholds } from '../src/ops/monitoring/thresholds.js';
import { canaryStatus, decideCanary, resumeCanary, runCanary } from '../src/ops/rollout/canary.js';
import { gateOf, PROMOTION_GATES } from '../src/ops/rollout/promotion.js';
import { resolveWitness } from '../src/ops/shared.js';
import { resolveState } from '../src/state/state-dir.js';
import { createProgress } from '../src/ui/progress.js';
import { canaryStatusKey, canaryStatusLine, renderCanary, renderCanaryStatus } from '../src/ui/rollout.js';
import { watchOutput } from '../src/ui/watch.js';

interface Flags extends ConfigFlags {
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

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const setup = async (flags: Flags) => {
    const loaded = await loadCommandConfig(ctx, flags);
    const state = resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
    return { state, config: resolveWitness(loaded, flags.witness, state), warnings: loaded.warnings };
  };
  withJson(withConfigOptions(cmd))
    .addOption(shared('stage'))
    .option('--canary-agents <n>', 'agents moved in the first phase (overrides the first step)')
    .option('--steps <list>', 'agents on the candidate per phase: counts or percentages', '1,25%,100%')
    .option('--monitor <duration>', 'analysis window after each phase but the last', '5m')
    .option('--interval <duration>', 'time between analysis checks', '60s')
    .option('--failure-limit <n>', 'failed checks tolerated per analysis (0: roll back on the first)', '0')
    .option(
      '--consecutive-error-limit <n>',
      'checks in a row a gate may be unmeasurable before it fails',
      '4',
    )
    .option(
      '--optional-gate <gate>',
      'a gate whose window may end unmeasured (default: rtt_p95_ms); repeatable',
      collect,
    )
    .option('--threshold <NAME=VALUE>', 'override a threshold, e.g. error_rate=0.02; repeatable', collect)
    .option(
      '--freeze-on-failure',
      'on a failed analysis keep the canary for inspection (then promote or abort)',
    )
    .option('--agents-dir <dir>', "the candidate's agent configs (default: the stable release's)")
    .option(
      '--release <source>',
      "the candidate's code, installed once into <state>/releases/<id>/: a tarball, a directory, a git ref of the checkout or an npm spec (default: the stable release's); with --stage production, also the id of a release staging promoted (its code and --set changes)",
    )
    .option('--force', 'with --stage production: take a release that staging did not promote')
    .option('--label <name>', "the candidate's name in `releases` (default: its version)")
    .option('--keep-releases <n>', 'release records, and their installed code, kept for rollback', '10')
    .addOption(shared('state-dir'))
    .addOption(shared('witness'))
    .option('--dry-run', 'print the plan and change nothing')
    .action(async (flags: Flags) => {
      const gate = gateOf(flags.stage);
      if (flags.force && !gate)
        throw new UsageError(
          '--force only lifts the promotion check of a gated stage',
          `use it with ${Object.keys(PROMOTION_GATES)
            .map((s) => `--stage ${s}`)
            .join(' or ')}`,
        );
      const { state, config, warnings } = await setup(flags);
      const out = io.output(flags);
      for (const w of warnings) out.warn(w);
      const progress = await createProgress(ctx, Boolean(flags.json));
      const r = await runCanary(
        {
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
          set: flags.set ?? {},
          agentsDir: flags.agentsDir ? path.resolve(ctx.cwd, flags.agentsDir) : undefined,
          release: flags.release,
          label: flags.label,
          keepReleases: intFlag(flags.keepReleases, '--keep-releases', 1, 1000),
          config,
          cwd: ctx.cwd,
          progress,
        },
        Boolean(flags.dryRun),
        ctx,
      ).finally(() => progress.close());
      out.result(r, renderCanary);
      if (r.state && r.state.status !== 'completed') io.setExitCode(ExitCode.checkFailed);
    });

  withJson(
    cmd
      .command('status')
      .description('the canary in progress or the last one; its exit codes: ifmesh help exit-codes'),
  )
    .option(
      '--watch',
      'follow it until it completes, fails, is aborted or frozen, or its runner dies: redrawn on a terminal, a line per change in a pipe, NDJSON with --json',
    )
    .option('--timeout <duration>', 'with --watch, give up after this long (exit 7)', '10m')
    .addOption(shared('stage'))
    .addOption(shared('state-dir'))
    .action(async (_: Flags, sub: Command) => {
      const flags = sub.optsWithGlobals<Flags>();
      const state = resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
      if (!flags.watch) {
        const st = await canaryStatus(state, undefined, ctx);
        io.output(flags).result(st, renderCanaryStatus);
        return io.setExitCode(st.exit_code);
      }
      const timeoutMs = durationFlag(flags.timeout, '--timeout');
      io.claimSignal(); // Ctrl-C ends the watch, leaving its last view
      const spec = { key: canaryStatusKey, line: canaryStatusLine, view: renderCanaryStatus };
      const st = await watchOutput(ctx, Boolean(flags.json), spec, (look) =>
        canaryStatus(state, timeoutMs, ctx, look),
      );
      io.setExitCode(st ? st.exit_code : ExitCode.interrupted);
    });

  const descriptions = {
    promote: 'skip the remaining analysis and move every agent to the candidate',
    abort: 'roll the canary agents back to the stable release',
    resume: 'go on with a canary whose runner died, from the step its state records',
  } as const;
  for (const action of ['promote', 'abort', 'resume'] as const)
    withJson(withConfigOptions(cmd.command(action).description(descriptions[action])))
      .addOption(shared('stage'))
      .addOption(shared('state-dir'))
      .addOption(shared('witness'))
      .action(async (_: Flags, sub: Command) => {
        // the parent shares option names (--state-dir, --json): commander hands them to it
        const flags = sub.optsWithGlobals<Flags>();
        const { state, config } = await setup(flags);
        const progress = await createProgress(ctx, Boolean(flags.json));
        const o = { state, config, progress };
        const r = await (action === 'resume' ? resumeCanary(o, ctx) : decideCanary(o, action, ctx)).finally(
          () => progress.close(),
        );
        io.output(flags).result(r, (x) =>
          'handed_to' in x && x.handed_to
            ? `${action} requested: the running canary (pid ${x.handed_to}) acts on it at its next check`
            : `${x.canary_id}: ${x.state.message}`,
        );
        if (action === 'resume' && r.state.status !== 'completed') io.setExitCode(ExitCode.checkFailed);
      });
}
