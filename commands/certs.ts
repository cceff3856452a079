import path from 'node:path';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type ConfigFlags, durationFlag, intFlag, withFlags } from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import type { LoadedConfig } from '../src/config/load.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { checkCertificate } from '../src/ops/certs/check.js';
import { planCertRotation, rotateCertificate } from '../src/ops/certs/rotate.js';
import { loadFleet } from '../src/ops/fleet/fleet.js';
import { resolveState } from '../src/state/state-dir.js';
import { renderCertCheck, renderCertPlan, renderCertRotation } from '../src/ui/certs.js';

type Flags = ConfigFlags & {
  cert?: string;
  key?: string;
  json?: boolean;
  stateDir?: string;
  witness?: string;
};

const DAY_MS = 86_400_000;

/** `--if-expiring 7d` (or 36h): the renewal threshold in days; a unit is required, 7 alone is ambiguous. */
function thresholdDays(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/[a-z]$/i.test(value.trim()))
    throw new UsageError(`--if-expiring ${value} needs a unit`, 'e.g. --if-expiring 7d or 36h');
  return durationFlag(value, '--if-expiring', { max: 3650 * DAY_MS }) / DAY_MS;
}

function files(flags: Flags, loaded: LoadedConfig, cwd: string, needKey: boolean) {
  const cert = flags.cert ? path.resolve(cwd, flags.cert) : loaded.config.signalingTlsCert;
  const key = flags.key ? path.resolve(cwd, flags.key) : loaded.config.signalingTlsKey;
  if (!cert) throw new UsageError('no certificate to check', 'pass --cert FILE, or set SIGNALING_TLS_CERT');
  if (needKey && !key)
    throw new UsageError(
      'no key to rotate with the certificate',
      'pass --key FILE, or set SIGNALING_TLS_KEY',
    );
  return { cert, key };
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const load = (flags: Flags) => loadCommandConfig(ctx, flags);
  withFlags(
    cmd
      .command('check')
      .description('expiry, chain and key of the TLS certificate; exit 1 if expired, expiring or mismatched')
      .option('--cert <file>', 'PEM certificate (default SIGNALING_TLS_CERT)')
      .option('--key <file>', 'PEM private key to match against it (default SIGNALING_TLS_KEY)')
      .option('--warn-days <n>', 'fail when fewer days are left', '7'),
    'config',
    'set',
    'json',
  ).action(async (flags: Flags & { warnDays: string }) => {
    const { cert, key } = files(flags, await load(flags), ctx.cwd, false);
    const warnDays = intFlag(flags.warnDays, '--warn-days', 0, 3650);
    const report = await checkCertificate({ cert, key, warnDays, now: ctx.clock.now() });
    io.output(flags).result(report, renderCertCheck);
    if (report.problems.length) io.setExitCode(ExitCode.checkFailed);
  });
  withFlags(
    cmd
      .command('rotate')
      .description(
        'back up, renew (certbot, or --self-signed-dev) and restart signaling instances one at a time',
      )
      .option('--cert <file>', 'PEM certificate (default SIGNALING_TLS_CERT)')
      .option('--key <file>', 'PEM private key (default SIGNALING_TLS_KEY)')
      .option(
        '--self-signed-dev',
        'generate a self-signed certificate (development only; refused in production)',
      )
      .option('--days <n>', 'lifetime of a --self-signed-dev certificate', '30')
      .option(
        '--if-expiring <duration>',
        "renew only when less than this is left (the runbook's rule; default 7d)",
      )
      .option('--force', 'renew whatever the days left (certbot --force-renewal: the CA rate-limits it)')
      .option('--dry-run', 'print the plan and change nothing'),
    'state-dir',
    'witness',
    'config',
    'set',
    'json',
  ).action(
    async (
      flags: Flags & {
        selfSignedDev?: boolean;
        days: string;
        dryRun?: boolean;
        ifExpiring?: string;
        force?: boolean;
      },
    ) => {
      const loaded = await load(flags);
      const { cert, key } = files(flags, loaded, ctx.cwd, true);
      if (flags.selfSignedDev && loaded.config.productionMode)
        throw new UsageError(
          '--self-signed-dev is refused with PRODUCTION_MODE=true',
          'install certbot, or renew by hand',
        );
      const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
      const days = intFlag(flags.days, '--days', 1, 825);
      if (flags.force && flags.ifExpiring)
        throw new UsageError(
          '--force renews whatever the days left',
          'pass --force or --if-expiring, not both',
        );
      const plan = await planCertRotation(
        {
          cert,
          key: key!,
          selfSignedDev: Boolean(flags.selfSignedDev),
          state,
          days,
          thresholdDays: thresholdDays(flags.ifExpiring),
          force: Boolean(flags.force),
          certbotConfigDir: loaded.config.certbotConfigDir,
        },
        ctx,
      );
      const out = io.output(flags);
      if (flags.dryRun) return out.result({ plan, dry_run: true }, (r) => renderCertPlan(r.plan));
      const fw = loadFleet(state, loaded, { witness: flags.witness }).witness;
      const w = { url: fw.url, apiKey: fw.api_key };
      const report = await rotateCertificate(
        plan,
        {
          state,
          witness: w.apiKey ? { ...w, state } : undefined,
          onStep: (line) => out.info(line),
        },
        ctx,
      );
      out.result(report, renderCertRotation);
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    },
  );
}
