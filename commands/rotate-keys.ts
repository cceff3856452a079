import type { Command } from 'commander';
import { resolveFleet } from '../src/cli/fleet.js';
import { type ConfigFlags, durationFlag, withFlags } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { ExitCode, UnauthorizedError } from '../src/errors.js';
import { applyRotation, planRotation } from '../src/ops/keys/rotate.js';
import { statePaths } from '../src/state/state-dir.js';
import { createProgress } from '../src/ui/progress.js';
import { renderRotation, renderRotationPlan, rotationProgress } from '../src/ui/rotation.js';

type Flags = ConfigFlags & {
  reason?: string;
  incidentId?: string;
  timeout: string;
  signaling?: string;
  witness?: string;
  stateDir?: string;
  dryRun?: boolean;
  json?: boolean;
};

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withFlags(cmd, 'signaling', 'witness', 'state-dir', 'config', 'set', 'json')
    .option('--reason <text>', 'why (logged; default "scheduled", or "security_incident" with --incident-id)')
    .option(
      '--incident-id <id>',
      'a suspected key compromise: rotate immediately, log srtp_key_compromise_detected',
    )
    .option('--timeout <duration>', 'how long agents have to answer', '60s')
    .option('--dry-run', 'print the plan and change nothing')
    .action(async (flags: Flags) => {
      const timeoutMs = durationFlag(flags.timeout, '--timeout', 3_600_000);
      const { stateDir, fleet } = await resolveFleet(ctx, flags);
      const plan = planRotation({
        signaling: fleet.signaling.map((x) => x.http),
        reason: flags.reason,
        incidentId: flags.incidentId,
        timeoutMs,
      });
      const out = io.output(flags);
      if (flags.dryRun) return out.result({ plan, dry_run: true }, (r) => renderRotationPlan(r.plan));
      const adminToken = fleet.admin_token;
      if (!adminToken)
        throw new UnauthorizedError(
          'no signaling admin token',
          `set SIGNALING_ADMIN_TOKEN, or run against the local stack (${statePaths(stateDir).adminToken})`,
        );
      const w = { url: fleet.witness.url, apiKey: fleet.witness.api_key };
      const progress = await createProgress(ctx, Boolean(flags.json));
      const live = !flags.json && Boolean(ctx.stderr.isTTY) && !ctx.env.CI;
      const report = await applyRotation(
        plan,
        {
          adminToken,
          witness: w.apiKey ? { ...w, stateDir } : undefined,
          onProgress: rotationProgress(progress, live),
        },
        ctx,
      ).finally(() => progress.close());
      out.result(report, renderRotation);
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    });
}
