import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { resolveFleet } from '../src/cli/fleet.js';
import { type ConfigFlags, durationFlag, withFlags } from '../src/cli/options.js';
import { ExitCode, UnauthorizedError, UsageError } from '../src/errors.js';
import { runIncident } from '../src/ops/incident/declare.js';
import { configuredNotifiers } from '../src/ops/incident/notify/send.js';
import { securityIncidentOptions } from '../src/ops/keys/emergency.js';
import { runPeriodicRotation } from '../src/ops/keys/periodic.js';
import { planRotation, runRotation } from '../src/ops/keys/rotate.js';
import { createProgress } from '../src/ui/progress.js';
import { renderPeriodic, renderRotation, renderRotationPlan, rotationProgress } from '../src/ui/rotation.js';

type Flags = ConfigFlags & {
  reason?: string;
  incidentId?: string;
  emergency?: boolean;
  notify: boolean;
  ifDue?: boolean;
  timeout: string;
  settle: string;
  signaling?: string;
  witness?: string;
  stateDir?: string;
  dryRun?: boolean;
  json?: boolean;
};

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withFlags(cmd, 'signaling', 'witness', 'state-dir', 'config', 'set', 'json')
    .option('--reason <text>', 'why (logged; default "scheduled", or "security_incident" when an emergency)')
    .option(
      '--emergency',
      'a suspected key compromise: rotate at once; without --incident-id, declare a SEC- incident',
    )
    .option('--incident-id <id>', 'the security incident this rotation answers (implies --emergency)')
    .option('--no-notify', 'an emergency: declare the incident without paging')
    .option(
      '--if-due',
      'the periodic rotation (cron): rotate only when ENABLE_SRTP_KEY_ROTATION and SRTP_KEY_ROTATION_INTERVAL_MS say so',
    )
    .option('--timeout <duration>', 'how long agents have to answer', '60s')
    .option('--settle <duration>', 'then wait this long and count failed connections (runbook step 4)', '10s')
    .option('--dry-run', 'print the plan and change nothing')
    .action(async (flags: Flags) => {
      const timeoutMs = durationFlag(flags.timeout, '--timeout', { max: 3_600_000 });
      const settleMs = durationFlag(flags.settle, '--settle', { min: 0, max: 600_000 });
      if (flags.ifDue && (flags.emergency || flags.incidentId))
        throw new UsageError(
          '--if-due is the scheduled rotation',
          'an emergency rotation runs at once: drop --if-due',
        );
      const { loaded, state, fleet } = await resolveFleet(ctx, flags);
      const out = io.output(flags);
      const w = { url: fleet.witness.url, apiKey: fleet.witness.api_key };
      const witness = w.apiKey ? { ...w, state } : undefined;
      const live = !flags.json && Boolean(ctx.stderr.isTTY) && !ctx.env.CI;
      if (flags.ifDue) {
        const progress = await createProgress(ctx, Boolean(flags.json));
        const report = await runPeriodicRotation(
          {
            state,
            signaling: fleet.signaling.map((x) => x.http),
            adminToken: fleet.admin_token,
            witness,
            enabled: loaded.config.enableSrtpKeyRotation,
            intervalMs: loaded.config.srtpKeyRotationIntervalMs,
            timeoutMs,
            settleMs,
            onProgress: rotationProgress(progress, live),
          },
          { notifiers: configuredNotifiers(loaded.config), notify: flags.notify },
          ctx,
        ).finally(() => progress.close());
        out.result(report, renderPeriodic);
        if (!report.ok) io.setExitCode(report.error?.exit_code ?? ExitCode.checkFailed);
        return;
      }
      const plan = planRotation({
        signaling: fleet.signaling.map((x) => x.http),
        reason: flags.reason,
        incidentId: flags.incidentId,
        emergency: flags.emergency,
        timeoutMs,
        settleMs,
      });
      if (flags.dryRun) return out.result({ plan, dry_run: true }, (r) => renderRotationPlan(r.plan));
      const adminToken = fleet.admin_token;
      if (!adminToken)
        throw new UnauthorizedError(
          'no signaling admin token',
          `set SIGNALING_ADMIN_TOKEN, or run against the local stack (${state.adminToken})`,
        );
      const incident = securityIncidentOptions({
        loaded,
        fleet,
        state,
        notify: flags.notify,
        witnessToken: ctx.env.WITNESS_QUERY_TOKEN || loaded.raw.WITNESS_QUERY_TOKEN || undefined,
      });
      const progress = await createProgress(ctx, Boolean(flags.json));
      const report = await runRotation(
        state,
        plan,
        {
          adminToken,
          witness,
          onProgress: rotationProgress(progress, live),
          onStep: (line) => progress.info(line),
          declareIncident: async () => (await runIncident(incident, ctx)).id,
        },
        ctx,
      ).finally(() => progress.close());
      out.result(report, renderRotation);
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    });
}
