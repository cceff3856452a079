// Daily maintenance's step 1: the certificate's days left, and with --renew the runbook's
// certificate-rotation-procedure.sh when fewer than --warn-days are left (the same rule as
// `certs rotate --if-expiring`, never a forced renewal). No certificate configured is not silent in
// production: it is a finding for a person.

import { checkCertificate } from '../certs/check.js';
import { applyCertRotation, type CertRotationReport, planCertRotation } from '../certs/rotate.js';
import { settleInterrupted } from '../procedure.js';
import type { OpContext } from '../shared.js';
import { errorText, type MaintenanceTargets } from './common.js';

export interface CertificateStep {
  certificate: { cert: string; days_left: number; status: string; problems: string[] } | null;
  /** The renewal --renew ran (or, on a dry run, planned); null when none was due or asked for. */
  renewal: CertRotationReport | null;
  /** Findings for a person; `urgent` ones cannot wait for the next working day. */
  needs: { text: string; urgent: boolean }[];
}

export interface CertificateOptions extends Pick<MaintenanceTargets, 'state' | 'witness'> {
  cert?: string | undefined;
  key?: string | undefined;
  warnDays: number;
  renew: boolean;
  production: boolean;
  certbotConfigDir?: string | undefined;
  dryRun: boolean;
}

export async function certificateStep(
  o: CertificateOptions,
  ctx: Pick<OpContext, 'clock' | 'exec' | 'dispatcher' | 'signal'>,
): Promise<CertificateStep> {
  const out: CertificateStep = { certificate: null, renewal: null, needs: [] };
  if (!o.cert) {
    if (o.production)
      out.needs.push({
        text: 'no TLS certificate configured with PRODUCTION_MODE=true: set SIGNALING_TLS_CERT and SIGNALING_TLS_KEY',
        urgent: true,
      });
    return out;
  }
  const check = async () => {
    const c = await checkCertificate({
      cert: o.cert!,
      key: o.key,
      warnDays: o.warnDays,
      now: ctx.clock.now(),
    });
    out.certificate = { cert: c.cert, days_left: c.days_left, status: c.status, problems: c.problems };
    return c;
  };
  let c: Awaited<ReturnType<typeof check>>;
  try {
    c = await check();
  } catch (err) {
    out.needs.push({ text: `certificate: ${errorText(err)}`, urgent: true });
    return out;
  }
  const expiring = c.status === 'expiring' || c.status === 'expired';
  if (o.renew && expiring) {
    if (!o.key) {
      out.needs.push({
        text: `certificate ${c.cert}: renewal needed but no key is configured (SIGNALING_TLS_KEY)`,
        urgent: true,
      });
    } else {
      try {
        out.renewal = await renew(o, o.key, ctx);
        if (out.renewal.renewed) c = await check();
        if (out.renewal.plan.method === 'manual' && !o.dryRun)
          out.needs.push({
            text: `certificate ${c.cert}: ${out.renewal.plan.manual_procedure.join(' ').replace(/\s+/g, ' ')}`,
            urgent: true,
          });
        else if (!out.renewal.ok)
          for (const p of out.renewal.problems)
            out.needs.push({ text: `certificate ${c.cert}: renewal: ${p}`, urgent: true });
      } catch (err) {
        out.needs.push({ text: `certificate ${c.cert}: renewal failed: ${errorText(err)}`, urgent: true });
      }
    }
  }
  // Not due, but a rotation was interrupted (a staged pair, instances still on the previous one):
  // --renew finishes it, so the nightly run converges what a killed `certs rotate` left.
  else if (o.renew && o.key && !o.dryRun) {
    try {
      const plan = await planCertRotation(
        {
          cert: o.cert,
          key: o.key,
          selfSignedDev: false,
          state: o.state,
          days: 30,
          thresholdDays: o.warnDays,
        },
        ctx,
      );
      if (!plan.due && (plan.finish_install || plan.restart.length)) {
        out.renewal = await applyCertRotation(plan, { state: o.state }, ctx);
        if (plan.finish_install) c = await check();
        if (out.renewal.ok)
          settleInterrupted(o.state, 'certs-rotate', 'maintenance daily --renew', ctx.clock);
        for (const p of out.renewal.problems)
          out.needs.push({
            text: `certificate ${c.cert}: finishing an interrupted rotation: ${p}`,
            urgent: true,
          });
      }
    } catch (err) {
      out.needs.push({
        text: `certificate ${c.cert}: finishing an interrupted rotation failed: ${errorText(err)}`,
        urgent: true,
      });
    }
  }
  for (const problem of c.problems)
    out.needs.push({
      text: `certificate ${c.cert}: ${problem}`,
      urgent: c.status === 'expiring' || c.status === 'expired' || c.status === 'not_yet_valid',
    });
  return out;
}

async function renew(
  o: CertificateOptions,
  key: string,
  ctx: Pick<OpContext, 'clock' | 'exec' | 'dispatcher' | 'signal'>,
): Promise<CertRotationReport> {
  const plan = await planCertRotation(
    {
      cert: o.cert!,
      key,
      selfSignedDev: false,
      state: o.state,
      days: 30,
      thresholdDays: o.warnDays,
      certbotConfigDir: o.certbotConfigDir,
    },
    ctx,
  );
  if (o.dryRun)
    return {
      plan,
      dry_run: true,
      ok: true,
      renewed: false,
      skipped: `dry run: would renew by ${plan.method}`,
      new_expiry: null,
      restarts: [],
      problems: [],
    };
  const witness = o.witness?.apiKey
    ? { url: o.witness.url, apiKey: o.witness.apiKey, state: o.state }
    : undefined;
  return applyCertRotation(plan, { state: o.state, witness }, ctx);
}
