// Certificates made by the tests with the real openssl: valid, expiring soon, already expired (OpenSSL
// 3.0's `req -x509` cannot backdate, so `ca -selfsign` with explicit dates), and spare keys.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { requireBinary } from './binaries.js';

const ssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: 'pipe', timeout: 30_000 });

export function makeKey(dir: string, name: string): string {
  requireBinary('openssl', 'openssl');
  const key = path.join(dir, `${name}.key`);
  ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', key], dir);
  return key;
}

/** A self-signed certificate valid for `days` from now, with its key. */
export function makeCert(dir: string, name: string, days: number): { cert: string; key: string } {
  const key = makeKey(dir, name);
  const cert = path.join(dir, `${name}.crt`);
  ssl(
    [
      'req',
      '-x509',
      '-key',
      key,
      '-out',
      cert,
      '-days',
      String(days),
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    dir,
  );
  return { cert, key };
}

/** A self-signed certificate whose validity ended on 2020-02-01. */
export function makeExpiredCert(dir: string, name: string): { cert: string; key: string } {
  const key = makeKey(dir, name);
  const ca = path.join(dir, `${name}-ca`);
  execFileSync('mkdir', ['-p', ca]);
  writeFileSync(path.join(ca, 'index.txt'), '');
  writeFileSync(path.join(ca, 'serial'), '01\n');
  const conf = path.join(ca, 'ca.cnf');
  writeFileSync(
    conf,
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      `dir = ${ca}`,
      'database = $dir/index.txt',
      'serial = $dir/serial',
      'new_certs_dir = $dir',
      'default_md = sha256',
      'policy = any',
      'copy_extensions = copy',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const csr = path.join(ca, 'req.csr');
  ssl(['req', '-new', '-key', key, '-out', csr, '-subj', '/CN=localhost'], dir);
  const cert = path.join(dir, `${name}.crt`);
  ssl(
    [
      'ca',
      '-batch',
      '-config',
      conf,
      '-selfsign',
      '-keyfile',
      key,
      '-in',
      csr,
      '-out',
      cert,
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20200201000000Z',
      '-notext',
    ],
    dir,
  );
  return { cert, key };
}
