import { defineCommand, failedIf } from '../../src/cli/define.js';
import { type ConfigFlags, intFlag } from '../../src/cli/options.js';
import { certFiles } from './files.js';

type Flags = ConfigFlags & { cert?: string; key?: string; warnDays: string; json?: boolean };

export default defineCommand<Flags, [], 'config'>({
  path: 'certs check',
  summary: 'expiry, chain and key of the TLS certificate; exit 1 if expired, expiring or mismatched',
  examples: ['ifmesh certs check --cert server.crt --key server.key'],
  flags: [
    { flags: '--cert <file>', description: 'PEM certificate (default SIGNALING_TLS_CERT)' },
    { flags: '--key <file>', description: 'PEM private key to match against it (default SIGNALING_TLS_KEY)' },
    { flags: '--warn-days <n>', description: 'fail when fewer days are left', default: '7' },
    'config',
    'set',
    'json',
  ],
  needs: ['config'],
  async run({ flags, needs, ctx, out }) {
    const { cert, key } = certFiles(flags, needs.config, ctx.cwd, false);
    const warnDays = intFlag(flags.warnDays, '--warn-days', 0, 3650);
    const [{ checkCertificate, fleetTrust }, { renderCertCheck }] = await Promise.all([
      import('../../src/ops/certs/check.js'),
      import('../../src/ui/certs.js'),
    ]);
    // Against the fleet's CA (IFMESH_CA_FILE) and the hosts its clients dial, when it has a CA file.
    const trust = fleetTrust(needs.config.config, ctx.tls?.caFile, cert);
    const report = await checkCertificate({ cert, key, warnDays, now: ctx.clock.now(), trust });
    out.result(report, renderCertCheck);
    return failedIf(report.problems.length > 0);
  },
});
