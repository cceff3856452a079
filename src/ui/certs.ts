import type { ChalkInstance } from 'chalk';
import type { CertCheck } from '../ops/certs/check.js';
import type { CertRotationPlan, CertRotationReport } from '../ops/certs/rotate.js';

export function renderCertCheck(r: CertCheck, c: ChalkInstance): string {
  const mark = r.problems.length === 0 ? c.green('✓') : c.red('✗');
  return [
    `${mark} ${r.cert}: ${r.status}, ${r.days_left} days left (expires ${r.not_after})`,
    `  subject ${r.subject}; issuer ${r.issuer}${r.self_signed ? ' (self-signed)' : ''}`,
    `  chain ${r.chain_ok ? 'ok' : 'BROKEN'} (${r.chain_length} in file)${r.key_matches === null ? '' : `; key ${r.key_matches ? 'matches' : 'DOES NOT match'}`}`,
    ...r.problems.map((p) => `  ${c.red('problem:')} ${p}`),
  ].join('\n');
}

const rule = (p: CertRotationPlan) =>
  p.force
    ? `forced (--force) with ${p.days_left} days left`
    : `${p.days_left} days left, under ${p.threshold_days}`;

export function renderCertPlan(p: CertRotationPlan): string {
  if (!p.due)
    return [
      `plan (dry run, nothing changed): nothing to renew: ${p.cert} is valid for ${p.days_left} more days (renewal under ${p.threshold_days}; --force renews now)`,
      // Instances started before the file last changed (a certificate installed by hand, or by a
      // rotation killed midway) are restarted onto it, one at a time: the real run does that.
      ...p.restart.map(
        (r, i) =>
          `  ${i + 1}. restart ${r.name} (pid ${r.pid}): it started before ${p.cert} last changed; wait until healthy`,
      ),
    ].join('\n');
  if (p.method === 'manual') return p.manual_procedure.join('\n');
  return [
    `plan (dry run, nothing changed): renew ${p.cert} by ${p.method} (${rule(p)})`,
    ...p.backups.map((b) => `  back up ${b.from} -> ${b.to}`),
    ...p.restart.map((r, i) => `  ${i + 1}. restart ${r.name} (pid ${r.pid}), wait until healthy`),
    ...(p.not_restarted.length
      ? [`  left alone (not started with this certificate): ${p.not_restarted.join(', ')}`]
      : []),
    '  log tls_certificate_rotated',
  ].join('\n');
}

export function renderCertRotation(r: CertRotationReport, c: ChalkInstance): string {
  if (r.skipped) return `${c.green('✓')} ${r.plan.cert}: ${r.skipped}`;
  if (r.plan.method === 'manual') return r.plan.manual_procedure.join('\n');
  return [
    r.ok
      ? `${c.green('✓')} certificate rotated: expires ${r.new_expiry} (was ${r.plan.old_expiry})`
      : `${c.red('✗')} certificate rotation incomplete`,
    ...r.restarts.map(
      (x) => `  ${x.name}: pid ${x.old_pid} -> ${x.new_pid ?? '-'} ${x.healthy ? 'healthy' : 'NOT healthy'}`,
    ),
    ...r.problems.map((p) => `  ${c.red('problem:')} ${p}`),
  ].join('\n');
}
