import { defineCommand, failedIf } from '../../src/cli/define.js';
import { type ConfigFlags, durationFlag, intFlag } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import { certFiles } from './files.js';

type Flags = ConfigFlags & {
  cert?: string;
  key?: string;
  json?: boolean;
  selfSignedDev?: boolean;
  days: string;
  dryRun?: boolean;
  ifExpiring?: string;
  force?: boolean;
};

const DAY_MS = 86_400_000;

/** `--if-expiring 7d` (or 36h): the renewal threshold in days; a unit is required, 7 alone is ambiguous. */
function thresholdDays(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/[a-z]$/i.test(value.trim()))
    throw new UsageError(`--if-expiring ${value} needs a unit`, 'e.g. --if-expiring 7d or 36h');
  return durationFlag(value, '--if-expiring', { max: 3650 * DAY_MS }) / DAY_MS;
}

export default defineCommand<Flags, [], 'witness'>({
  path: 'certs rotate',
  summary: 'back up, renew (certbot, or --self-signed-dev) and restart signaling instances one at a time',
  examples: ['ifmesh certs rotate --self-signed-dev --dry-run'],
  flags: [
    { flags: '--cert <file>', description: 'PEM certificate (default SIGNALING_TLS_CERT)' },
    { flags: '--key <file>', description: 'PEM private key (default SIGNALING_TLS_KEY)' },
    {
      flags: '--self-signed-dev',
      description: 'generate a self-signed certificate (development only; refused in production)',
    },
    { flags: '--days <n>', description: 'lifetime of a --self-signed-dev certificate', default: '30' },
    {
      flags: '--if-expiring <duration>',
      description: "renew only when less than this is left (the runbook's rule; default 7d)",
    },
    {
      flags: '--force',
      description: 'renew whatever the days left (certbot --force-renewal: the CA rate-limits it)',
    },
    { flags: '--dry-run', description: 'print the plan and change nothing' },
    'state-dir',
    'witness',
    'config',
    'set',
    'json',
  ],
  needs: ['witness'],
  async run({ flags, needs: { config: loaded, state, witness: mesh }, ctx, out }) {
    const { cert, key } = certFiles(flags, loaded, ctx.cwd, true);
    if (flags.selfSignedDev && loaded.config.productionMode)
      throw new UsageError(
        '--self-signed-dev is refused with PRODUCTION_MODE=true',
        'install certbot, or renew by hand',
      );
    const days = intFlag(flags.days, '--days', 1, 825);
    if (flags.force && flags.ifExpiring)
      throw new UsageError(
        '--force renews whatever the days left',
        'pass --force or --if-expiring, not both',
      );
    const [{ planCertRotation, rotateCertificate }, { renderCertPlan, renderCertRotation }] =
      await Promise.all([import('../../src/ops/certs/rotate.js'), import('../../src/ui/certs.js')]);
    const plan = await planCertRotation(
      {
        cert,
        key: key as string,
        selfSignedDev: Boolean(flags.selfSignedDev),
        state,
        days,
        thresholdDays: thresholdDays(flags.ifExpiring),
        force: Boolean(flags.force),
        certbotConfigDir: loaded.config.certbotConfigDir,
      },
      ctx,
    );
    if (flags.dryRun) {
      out.result({ plan, dry_run: true }, (r) => renderCertPlan(r.plan));
      return;
    }
    const w = { url: mesh.witnessUrl, apiKey: mesh.witnessApiKey };
    const report = await rotateCertificate(
      plan,
      { state, witness: w.apiKey ? { ...w, state } : undefined, onStep: (line) => out.info(line) },
      ctx,
    );
    out.result(report, renderCertRotation);
    return failedIf(!report.ok);
  },
});
