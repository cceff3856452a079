// `certs rotate --dry-run` for people: a certificate that is not due, with instances started before
// its file last changed, shows the restarts the real run makes (a drill's dry run said only "nothing
// to renew", and the run restarted both instances).
import { describe, expect, it } from 'vitest';
import type { CertRotationPlan } from '../../src/ops/certs/rotate.js';
import { renderCertPlan } from '../../src/ui/certs.js';

const plan = (restart: CertRotationPlan['restart']): CertRotationPlan => ({
  cert: '/etc/ifmesh/signaling.crt',
  key: '/etc/ifmesh/signaling.key',
  method: 'certbot',
  domain: 'mesh.example',
  old_expiry: '2027-01-05T00:00:00.000Z',
  days_left: 29,
  threshold_days: 7,
  force: false,
  due: false,
  finish_install: false,
  backups: [],
  restart,
  not_restarted: [],
  days: 90,
  manual_procedure: [],
});

describe('certs rotate --dry-run, not due', () => {
  it('names the instances still on the previous file, in restart order', () => {
    const text = renderCertPlan(
      plan([
        { name: 'deploy-signaling-1', pid: 101, url: 'wss://127.0.0.1:19443' },
        { name: 'deploy-signaling-2', pid: 102, url: 'wss://127.0.0.1:19444' },
      ]),
    );
    expect(text.split('\n')).toEqual([
      'plan (dry run, nothing changed): nothing to renew: /etc/ifmesh/signaling.crt is valid for 29 more days (renewal under 7; --force renews now)',
      '  1. restart deploy-signaling-1 (pid 101): it started before /etc/ifmesh/signaling.crt last changed; wait until healthy',
      '  2. restart deploy-signaling-2 (pid 102): it started before /etc/ifmesh/signaling.crt last changed; wait until healthy',
    ]);
  });

  it('is one line when every instance already serves the file', () => {
    expect(renderCertPlan(plan([])).split('\n')).toHaveLength(1);
  });
});
