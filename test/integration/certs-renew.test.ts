// The runbook's renewal rule, "renew when under 7 days", against a stand-in for certbot: a script on
// PATH that records its arguments and, like `certbot renew`, writes a fresh openssl-made certificate
// under <config-dir>/live/<name>/ (the CA cannot run here). `certs rotate` and `maintenance daily
// --renew` call it only under the threshold, and pass --force-renewal (which the CA rate-limits)
// only with --force.
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, stateDir, tempDir } from '../helpers/cli.js';
import { makeCert } from '../helpers/tls.js';

let dir: { dir: string; cleanup: () => void };
let bin: string;
let calls: string;
let live: string;

const FAKE_CERTBOT = `#!/bin/sh
# Stands for certbot: logs its arguments, then issues a 90-day certificate where certbot would.
echo "$*" >> "$CERTBOT_CALLS"
while [ $# -gt 0 ]; do
  case "$1" in
    --cert-name) name="$2"; shift ;;
    --config-dir) dir="$2"; shift ;;
  esac
  shift
done
mkdir -p "$dir/live/$name"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \\
  -keyout "$dir/live/$name/privkey.pem" -out "$dir/live/$name/fullchain.pem" \\
  -days 90 -subj "/CN=$name" 2>/dev/null
echo "Congratulations, all renewals succeeded: $dir/live/$name/fullchain.pem (success)"
`;

beforeEach(() => {
  requireBinary('openssl', 'openssl');
  dir = tempDir();
  bin = path.join(dir.dir, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'certbot'), FAKE_CERTBOT);
  chmodSync(path.join(bin, 'certbot'), 0o755);
  calls = path.join(dir.dir, 'certbot-calls.log');
  live = path.join(dir.dir, 'letsencrypt');
});
afterEach(() => dir.cleanup());

const env = () => ({
  PATH: `${bin}:/usr/bin:/bin`,
  CERTBOT_CALLS: calls,
  CERTBOT_CONFIG_DIR: live,
  IFMESH_STATE_DIR: stateDir(dir.dir),
});
const certbotCalls = () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []);
const expiry = (file: string) => new X509Certificate(readFileSync(file)).validTo;

function rotate(cert: { cert: string; key: string }, ...extra: string[]) {
  return spawnCli(['certs', 'rotate', '--cert', cert.cert, '--key', cert.key, '--json', ...extra], {
    cwd: dir.dir,
    env: env(),
    timeoutMs: 60_000,
  });
}

describe('certs rotate renews on the runbook rule', () => {
  it('30 days left: nothing to renew, certbot never called, exit 0', async () => {
    const c = makeCert(dir.dir, 'fresh', 30);
    const before = readFileSync(c.cert, 'utf8');
    const r = await rotate(c);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      ok: true,
      renewed: false,
      plan: { due: false, threshold_days: 7, force: false },
    });
    expect(doc.skipped).toMatch(/^valid for 2\d more days; renewal happens under 7 days/);
    expect(certbotCalls()).toEqual([]);
    expect(readFileSync(c.cert, 'utf8')).toBe(before);
    expect(readdirSync(dir.dir).filter((f) => f.includes('.backup.'))).toEqual([]);
    const dry = await spawnCli(['certs', 'rotate', '--cert', c.cert, '--key', c.key, '--dry-run'], {
      cwd: dir.dir,
      env: env(),
    });
    expect(dry.stdout).toContain('nothing to renew');
  });

  it('3 days left: certbot renews without --force-renewal, the new pair replaces the old', async () => {
    const c = makeCert(dir.dir, 'soon', 3);
    const old = expiry(c.cert);
    const r = await rotate(c);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      ok: true,
      renewed: true,
      plan: { method: 'certbot', due: true, force: false },
    });
    expect(certbotCalls()).toEqual([`renew --non-interactive --cert-name soon.test --config-dir ${live}`]);
    expect(expiry(c.cert)).not.toBe(old);
    expect(doc.new_expiry).toBe(new Date(expiry(c.cert)).toISOString());
    for (const b of doc.plan.backups) expect(existsSync(b.to)).toBe(true);
  });

  it('--if-expiring 45d renews a 30-day certificate; --force renews with --force-renewal', async () => {
    const c = makeCert(dir.dir, 'month', 30);
    const r = await rotate(c, '--if-expiring', '45d');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ renewed: true, plan: { threshold_days: 45, force: false } });
    const forced = await rotate(c, '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ renewed: true, plan: { force: true } });
    expect(certbotCalls()).toEqual([
      `renew --non-interactive --cert-name month.test --config-dir ${live}`,
      `renew --force-renewal --non-interactive --cert-name month.test --config-dir ${live}`,
    ]);
    const both = await rotate(c, '--force', '--if-expiring', '7d');
    expect(both.code).toBe(2);
    const bare = await rotate(c, '--if-expiring', '7');
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('needs a unit');
  });

  it('certbot exiting 0 without renewing (its own window is shorter): refused, nothing replaced', async () => {
    const c = makeCert(dir.dir, 'stale', 3);
    // certbot's live copy is the same certificate: nothing new to install.
    writeFileSync(
      path.join(bin, 'certbot'),
      `#!/bin/sh\necho "$*" >> "$CERTBOT_CALLS"\nmkdir -p "${live}/live/stale.test"\ncp "${c.cert}" "${live}/live/stale.test/fullchain.pem"\ncp "${c.key}" "${live}/live/stale.test/privkey.pem"\necho "Cert not yet due for renewal"\n`,
    );
    const before = readFileSync(c.cert, 'utf8');
    const r = await rotate(c);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.renewed).toBe(false);
    expect(doc.problems.join('\n')).toContain('certbot did not renew');
    expect(doc.problems.join('\n')).toContain('ifmesh certs rotate --force');
    expect(readFileSync(c.cert, 'utf8')).toBe(before);
  });
});

describe('maintenance daily --renew', () => {
  it('renews a certificate with 3 days left and reports the new days left; one with 30 is left alone', async () => {
    const c = makeCert(dir.dir, 'daily', 3);
    const state = stateDir(dir.dir);
    const args = [
      'maintenance',
      'daily',
      '--renew',
      '--state-dir',
      state,
      '--cert',
      c.cert,
      '--key',
      c.key,
      '--json',
    ];
    const r = await spawnCli(args, { cwd: dir.dir, env: env(), timeoutMs: 60_000 });
    const doc = JSON.parse(r.stdout);
    expect(doc.renewal).toMatchObject({ ok: true, renewed: true, plan: { force: false, threshold_days: 7 } });
    expect(doc.certificate.days_left).toBeGreaterThanOrEqual(88);
    expect(doc.needs_human.join('\n')).not.toContain('certificate');
    expect(certbotCalls()).toEqual([`renew --non-interactive --cert-name daily.test --config-dir ${live}`]);
    // The next day's run finds nothing due: certbot is not called again.
    const again = await spawnCli(args, { cwd: dir.dir, env: env(), timeoutMs: 60_000 });
    expect(JSON.parse(again.stdout).renewal).toBeNull();
    expect(certbotCalls()).toHaveLength(1);
  });
});
