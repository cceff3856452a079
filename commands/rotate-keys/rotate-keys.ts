import { defineCommand } from '../../src/cli/define.js';
import { type ConfigFlags, durationFlag, MESH_FLAGS } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import { createProgress, type Progress } from '../../src/ui/progress.js';

type Flags = ConfigFlags & {
  reason?: string;
  incidentId?: string;
  emergency?: boolean;
  notify: boolean;
  ifDue?: boolean;
  timeout: string;
  settle: string;
  dryRun?: boolean;
  json?: boolean;
};

export default defineCommand<Flags, [], 'fleet'>({
  path: 'rotate-keys',
  examples: [
    'ifmesh rotate-keys --reason scheduled',
    'ifmesh rotate-keys --incident-id SEC-42 --timeout 60s',
  ],
  flags: [
    ...MESH_FLAGS,
    {
      flags: '--reason <text>',
      description: 'why (logged; default "scheduled", or "security_incident" when an emergency)',
    },
    {
      flags: '--emergency',
      description:
        'a suspected key compromise: rotate at once; without --incident-id, declare a SEC- incident',
    },
    {
      flags: '--incident-id <id>',
      description: 'the security incident this rotation answers (implies --emergency)',
    },
    { flags: '--no-notify', description: 'an emergency: declare the incident without paging' },
    {
      flags: '--if-due',
      description:
        'the periodic rotation (cron): rotate only when ENABLE_SRTP_KEY_ROTATION and SRTP_KEY_ROTATION_INTERVAL_MS say so',
    },
    { flags: '--timeout <duration>', description: 'how long agents have to answer', default: '60s' },
    {
      flags: '--settle <duration>',
      description: 'then wait this long and count failed connections (runbook step 4)',
      default: '10s',
    },
    { flags: '--dry-run', description: 'print the plan and change nothing' },
  ],
  needs: ['fleet'],
  async run({ flags, needs, ctx, out }) {
    const timeoutMs = durationFlag(flags.timeout, '--timeout', { max: 3_600_000 });
    const settleMs = durationFlag(flags.settle, '--settle', { min: 0, max: 600_000 });
    if (flags.ifDue && (flags.emergency || flags.incidentId))
      throw new UsageError(
        '--if-due is the scheduled rotation',
        'an emergency rotation runs at once: drop --if-due',
      );
    const [{ rotateIfDue, rotateNow }, { planRotation }, ui] = await Promise.all([
      import('../../src/ops/keys/fleet.js'),
      import('../../src/ops/keys/rotate.js'),
      import('../../src/ui/rotation.js'),
    ]);
    const live = !flags.json && Boolean(ctx.stderr.isTTY) && !ctx.env.CI;
    const base = {
      loaded: needs.config,
      state: needs.state,
      fleet: needs.fleet,
      notify: flags.notify,
      progress: () => createProgress(ctx, Boolean(flags.json)),
      onProgress: (p: Progress) => ui.rotationProgress(p, live),
    };
    if (flags.ifDue) {
      const report = await rotateIfDue({ ...base, timeoutMs, settleMs }, ctx);
      out.result(report, ui.renderPeriodic);
      if (report.ok) return;
      return report.error ? { exitCode: report.error.exit_code } : 'checkFailed';
    }
    const plan = planRotation({
      signaling: needs.fleet.signaling.map((x) => x.http),
      reason: flags.reason,
      incidentId: flags.incidentId,
      emergency: flags.emergency,
      timeoutMs,
      settleMs,
    });
    if (flags.dryRun) {
      out.result({ plan, dry_run: true }, (r) => ui.renderRotationPlan(r.plan));
      return;
    }
    const report = await rotateNow({ ...base, plan }, ctx);
    out.result(report, ui.renderRotation);
    return report.ok ? undefined : 'checkFailed';
  },
});
