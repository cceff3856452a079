import path from 'node:path';
import { intFlag } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import type { FailoverFlags } from './flags.js';
import { scenario } from './scenario.js';

type Flags = FailoverFlags & { cert?: string; key?: string; selfSignedDev?: boolean; days: string };

export default scenario<Flags>(
  'D',
  {
    name: 'cert',
    summary: 'Scenario D: certificate rotation (certificate-rotation-procedure.sh)',
    example: 'ifmesh failover cert --cert new.crt --key new.key',
    flags: [
      { flags: '--cert <file>', description: 'PEM certificate (default SIGNALING_TLS_CERT)' },
      { flags: '--key <file>', description: 'PEM private key (default SIGNALING_TLS_KEY)' },
      { flags: '--self-signed-dev', description: 'generate a self-signed certificate (development only)' },
      { flags: '--days <n>', description: 'lifetime of a --self-signed-dev certificate', default: '30' },
    ],
  },
  async (flags, s, id, ctx) => {
    const cert = flags.cert ? path.resolve(ctx.cwd, flags.cert) : s.loaded.config.signalingTlsCert;
    const key = flags.key ? path.resolve(ctx.cwd, flags.key) : s.loaded.config.signalingTlsKey;
    if (!cert || !key)
      throw new UsageError(
        'no certificate to rotate',
        'pass --cert and --key, or set SIGNALING_TLS_CERT/KEY',
      );
    if (flags.selfSignedDev && s.loaded.config.productionMode)
      throw new UsageError('--self-signed-dev is refused with PRODUCTION_MODE=true', 'install certbot');
    const days = intFlag(flags.days, '--days', 1, 825);
    const [{ planCertRotation }, { planCertFailover }] = await Promise.all([
      import('../../src/ops/certs/rotate.js'),
      import('../../src/ops/failover/scenarios.js'),
    ]);
    const c = await planCertRotation(
      { cert, key, selfSignedDev: Boolean(flags.selfSignedDev), state: s.state, days },
      ctx,
    );
    return planCertFailover({ failoverId: id, signaling: s.urls, cert: c });
  },
);
