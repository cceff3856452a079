// certbot (Let's Encrypt), when installed: the runbook's `certbot renew --force-renewal`.
import path from 'node:path';
import type { Exec } from '../util/exec.js';

export interface CertbotRenewal {
  ok: boolean;
  /** Where certbot keeps the renewed files for `domain`. */
  fullchain: string;
  privkey: string;
  output: string;
}

export async function certbotRenew(
  exec: Exec,
  o: { domain: string; liveDir?: string; timeoutMs?: number },
): Promise<CertbotRenewal> {
  const r = await exec(
    'certbot',
    ['renew', '--force-renewal', '--non-interactive', '--cert-name', o.domain],
    {
      timeoutMs: o.timeoutMs ?? 300_000,
    },
  );
  const live = path.join(o.liveDir ?? '/etc/letsencrypt/live', o.domain);
  return {
    ok: r.code === 0,
    fullchain: path.join(live, 'fullchain.pem'),
    privkey: path.join(live, 'privkey.pem'),
    output: `${r.stdout}${r.stderr}`.trim().split('\n').slice(-5).join('\n'),
  };
}
