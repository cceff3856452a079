// certbot (Let's Encrypt), when installed. The runbook's `certbot renew --force-renewal` renews
// whatever the days left, and the CA rate-limits duplicate certificates (5 a week), so the force is
// only passed when the operator asked for it (`certs rotate --force`). Without it, certbot renews
// only inside its own renewal window (30 days before expiry by default), which contains ifmesh's
// 7-day rule; the caller checks that the expiry actually moved.
import path from 'node:path';
import type { Exec } from '../util/exec.js';

export interface CertbotRenewal {
  ok: boolean;
  /** Where certbot keeps the renewed files for `domain`. */
  fullchain: string;
  privkey: string;
  output: string;
  /** The arguments certbot ran with (no secret among them). */
  args: string[];
}

export function certbotArgs(o: {
  domain: string;
  force?: boolean;
  configDir?: string | undefined;
}): string[] {
  return [
    'renew',
    ...(o.force ? ['--force-renewal'] : []),
    '--non-interactive',
    '--cert-name',
    o.domain,
    ...(o.configDir ? ['--config-dir', o.configDir] : []),
  ];
}

export async function certbotRenew(
  exec: Exec,
  o: { domain: string; force?: boolean; configDir?: string | undefined; timeoutMs?: number },
): Promise<CertbotRenewal> {
  const args = certbotArgs(o);
  const r = await exec('certbot', args, { timeoutMs: o.timeoutMs ?? 300_000 });
  const live = path.join(o.configDir ?? '/etc/letsencrypt', 'live', o.domain);
  return {
    ok: r.code === 0,
    fullchain: path.join(live, 'fullchain.pem'),
    privkey: path.join(live, 'privkey.pem'),
    output: `${r.stdout}${r.stderr}`.trim().split('\n').slice(-5).join('\n'),
    args,
  };
}
