import path from 'node:path';
import { defineCommand, failedIf } from '../../src/cli/define.js';
import { intFlag } from '../../src/cli/options.js';
import { type MaintenanceFlags, SHARED } from './flags.js';

type Flags = MaintenanceFlags & {
  cert?: string;
  key?: string;
  warnDays: string;
  retainDays: string;
  renew?: boolean;
  dryRun?: boolean;
};

export default defineCommand<Flags>({
  path: 'maintenance daily',
  summary:
    'certificate days left (renewed with --renew), log sizes and rotation, witness cleanup, key rotation health, daily health report (cron-safe)',
  examples: ['ifmesh maintenance daily'],
  flags: [
    { flags: '--cert <file>', description: 'certificate to check (default SIGNALING_TLS_CERT)' },
    { flags: '--key <file>', description: 'its key (default SIGNALING_TLS_KEY)' },
    { flags: '--warn-days <n>', description: 'a person is needed when fewer days are left', default: '7' },
    { flags: '--renew', description: 'renew the certificate (certbot) when fewer than --warn-days are left' },
    { flags: '--retain-days <n>', description: 'witness events older than this are pruned', default: '30' },
    {
      flags: '--dry-run',
      description: 'show what logrotate would do; no cleanup, no renewal, no report, nobody told',
    },
    ...SHARED,
  ],
  async run({ flags, ctx, io }) {
    const [{ maintenanceTargets }, { runDaily }, { renderDaily }] = await Promise.all([
      import('./targets.js'),
      import('../../src/ops/maintenance/daily.js'),
      import('../../src/ui/maintenance.js'),
    ]);
    const out = () => io.output(flags);
    const { loaded, t, notice } = await maintenanceTargets('daily', flags, ctx, out);
    const c = loaded.config;
    const report = await runDaily(
      {
        ...t,
        cert: flags.cert ? path.resolve(ctx.cwd, flags.cert) : c.signalingTlsCert,
        key: flags.key ? path.resolve(ctx.cwd, flags.key) : c.signalingTlsKey,
        warnDays: intFlag(flags.warnDays, '--warn-days', 0, 3650),
        retainDays: intFlag(flags.retainDays, '--retain-days', 1, 36500),
        renew: Boolean(flags.renew),
        production: c.productionMode,
        certbotConfigDir: c.certbotConfigDir,
        keyRotation: { enabled: c.enableSrtpKeyRotation, intervalMs: c.srtpKeyRotationIntervalMs },
        notice,
        dryRun: Boolean(flags.dryRun),
      },
      ctx,
    );
    out().result(report, renderDaily);
    return failedIf(!report.ok);
  },
});
