// `ifmesh certs check` on certificates the test makes with openssl: valid, expiring in 3 days,
// expired, a wrong key and a broken chain, each with the exit code and report a user sees.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, tempDir } from '../helpers/cli.js';
import { makeCa, makeCert, makeExpiredCert, makeServerCert } from '../helpers/tls.js';

let dir: { dir: string; cleanup: () => void };
let valid: { cert: string; key: string };
beforeAll(() => {
  dir = tempDir();
  valid = makeCert(dir.dir, 'valid', 365);
});
afterAll(() => dir.cleanup());

const check = async (...args: string[]) => {
  const r = await run(['certs', 'check', ...args, '--json'], { cwd: dir.dir });
  return { code: r.code, doc: JSON.parse(r.stdout), stderr: r.stderr };
};

describe('certs check against the fleet (IFMESH_CA_FILE)', () => {
  const fleet = async (cert: string) => {
    const r = await run(['certs', 'check', '--cert', cert, '--warn-days', '0', '--json'], {
      cwd: dir.dir,
      env: {
        IFMESH_CA_FILE: ca.cert,
        SIGNALING_HOST: '127.0.0.1',
        SIGNALING_PUBLIC_URL: 'wss://localhost:19440',
      },
    });
    return { code: r.code, doc: JSON.parse(r.stdout) };
  };
  let ca: { cert: string; key: string };
  beforeAll(() => {
    ca = makeCa(dir.dir, 'fleet-ca');
  });

  it('passes a certificate the CA issued for the hosts clients dial', async () => {
    const good = makeServerCert(dir.dir, ca, 'issued', ['localhost', '127.0.0.1']);
    const { code, doc } = await fleet(good.cert);
    expect(code).toBe(0);
    expect(doc).toMatchObject({ status: 'ok', trusted_by: ca.cert, hosts: ['localhost', '127.0.0.1'] });
  });

  it("fails one the CA did not issue, and one for another host: the fleet's clients would refuse both", async () => {
    const stranger = await fleet(makeCert(dir.dir, 'self', 30, 'DNS:localhost,IP:127.0.0.1').cert);
    expect(stranger.code).toBe(1);
    expect(stranger.doc.status).toBe('invalid');
    expect(stranger.doc.problems.join('\n')).toContain(`not issued by ${ca.cert}`);
    const elsewhere = await fleet(makeServerCert(dir.dir, ca, 'other', ['other.example']).cert);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.doc.problems).toEqual([
      'does not name localhost, 127.0.0.1 (its subjectAltName), which clients dial: they would refuse it',
    ]);
  });
});

describe('certs check', () => {
  it('a valid certificate with its key: exit 0, days left, chain and key ok', async () => {
    const { code, doc } = await check('--cert', valid.cert, '--key', valid.key);
    expect(code).toBe(0);
    expect(doc).toMatchObject({
      status: 'ok',
      self_signed: true,
      chain_ok: true,
      key_matches: true,
      problems: [],
    });
    expect(doc.days_left).toBeGreaterThanOrEqual(363);
    expect(doc.days_left).toBeLessThanOrEqual(365);
  });

  it('expiring in 3 days: exit 1 under the default 7, exit 0 with --warn-days 2', async () => {
    const soon = makeCert(dir.dir, 'soon', 3);
    const r = await check('--cert', soon.cert, '--key', soon.key);
    expect(r.code).toBe(1);
    expect(r.doc.status).toBe('expiring');
    expect([2, 3]).toContain(r.doc.days_left);
    expect(r.doc.problems[0]).toMatch(/renew with `ifmesh certs rotate`$/);
    expect((await check('--cert', soon.cert, '--warn-days', '2')).code).toBe(0);
  });

  it('expiring above the renewal threshold (--warn-days 40, 29 days left): the advice says --force', async () => {
    const month = makeCert(dir.dir, 'month', 30);
    const r = await check('--cert', month.cert, '--key', month.key, '--warn-days', '40');
    expect(r.code).toBe(1);
    expect(r.doc.problems[0]).toContain(
      'renew with `ifmesh certs rotate --force` (without --force it renews under 7 days left)',
    );
  });

  it('expired: exit 1, status expired, negative days', async () => {
    const old = makeExpiredCert(dir.dir, 'old');
    const r = await check('--cert', old.cert, '--key', old.key);
    expect(r.code).toBe(1);
    expect(r.doc).toMatchObject({
      status: 'expired',
      not_after: '2020-02-01T00:00:00.000Z',
      key_matches: true,
    });
    expect(r.doc.days_left).toBeLessThan(0);
  });

  it('the wrong key: exit 1 naming the key', async () => {
    const other = makeCert(dir.dir, 'other', 365).key;
    const r = await check('--cert', valid.cert, '--key', other);
    expect(r.code).toBe(1);
    expect(r.doc).toMatchObject({ status: 'invalid', key_matches: false });
    expect(r.doc.problems).toEqual([`the key ${other} does not belong to the certificate`]);
  });

  it('a chain whose second certificate did not sign the first: exit 1, chain broken', async () => {
    const stranger = makeCert(dir.dir, 'stranger', 365);
    const bundle = path.join(dir.dir, 'bundle.pem');
    writeFileSync(bundle, readFileSync(valid.cert, 'utf8') + readFileSync(stranger.cert, 'utf8'));
    const r = await check('--cert', bundle);
    expect(r.code).toBe(1);
    expect(r.doc).toMatchObject({ chain_ok: false, chain_length: 2, status: 'invalid' });
  });

  it('no certificate named: exit 2 with what to do; a missing file: exit 2', async () => {
    const none = await run(['certs', 'check'], { cwd: dir.dir });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--cert FILE');
    const missing = await run(['certs', 'check', '--cert', 'nope.crt'], { cwd: dir.dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('ENOENT');
  });
});
