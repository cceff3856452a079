import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { requireBinary } from './binaries.js';

export interface TestCert {
  cert: string;
  key: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * A self-signed certificate valid from now for `days` days, made by openssl in `dir`; with `san`
 * (e.g. DNS:localhost,IP:127.0.0.1) one a client can verify by trusting the certificate itself.
 */
export function makeCert(dir: string, name: string, days: number, san?: string): TestCert {
  const openssl = requireBinary('openssl', 'openssl');
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    openssl,
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      String(days),
      '-subj',
      `/CN=${name}.test`,
      ...(san ? ['-addext', `subjectAltName=${san}`] : []),
    ],
    {
      stdio: 'ignore',
      timeout: 20_000,
    },
  );
  return { cert, key };
}

/**
 * A certificate that expired long ago. OpenSSL 3.0's `req -x509` cannot back-date, so it is signed
 * by `openssl ca -selfsign` with explicit -startdate/-enddate (a throw-away CA database in `dir`).
 */
export function makeExpiredCert(dir: string, name: string): TestCert {
  const openssl = requireBinary('openssl', 'openssl');
  const ca = path.join(dir, `${name}-ca`);
  mkdirSync(ca, { recursive: true });
  writeFileSync(path.join(ca, 'index.txt'), '');
  writeFileSync(path.join(ca, 'serial'), '01\n');
  const cnf = path.join(ca, 'ca.cnf');
  writeFileSync(
    cnf,
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      `database = ${path.join(ca, 'index.txt')}`,
      `serial = ${path.join(ca, 'serial')}`,
      `new_certs_dir = ${ca}`,
      'default_md = sha256',
      'policy = any',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(ca, 'req.csr');
  const cert = path.join(dir, `${name}.crt`);
  const o = { stdio: 'ignore' as const, timeout: 20_000 };
  execFileSync(openssl, ['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${name}.test`], o);
  execFileSync(
    openssl,
    [
      'ca',
      '-batch',
      '-config',
      cnf,
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
    ],
    o,
  );
  return { cert, key };
}

/** A private CA (the kind IFMESH_CA_FILE names), made by openssl in `dir`. */
export function makeCa(dir: string, name = 'ifmesh-test-ca'): TestCert {
  const openssl = requireBinary('openssl', 'openssl');
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    openssl,
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    { stdio: 'ignore', timeout: 20_000 },
  );
  return { cert, key };
}

/** A server certificate for `names` (DNS names and IP addresses), signed by `ca`, valid `days` (2). */
export function makeServerCert(dir: string, ca: TestCert, name: string, names: string[], days = 2): TestCert {
  const openssl = requireBinary('openssl', 'openssl');
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(
    ext,
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  const o = { stdio: 'ignore' as const, timeout: 20_000 };
  execFileSync(openssl, ['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`], o);
  execFileSync(
    openssl,
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      String(days),
      '-extfile',
      ext,
    ],
    o,
  );
  return { cert, key };
}

/**
 * Writes `dir/tls.env`, an operator's env file for a TLS fleet on loopback: the server certificate
 * and CA of `makeTlsCerts` (relative paths: relative to the file), then `more` lines.
 */
export function writeTlsEnv(dir: string, more: string[] = []): string {
  const file = path.join(dir, 'tls.env');
  writeFileSync(
    file,
    [
      'SIGNALING_HOST=127.0.0.1',
      'SIGNALING_TLS_CERT=certs/signaling.crt',
      'SIGNALING_TLS_KEY=certs/signaling.key',
      'IFMESH_CA_FILE=certs/ifmesh-test-ca.crt',
      ...more,
      '',
    ].join('\n'),
  );
  return file;
}

/** `dir/certs/`: a CA (ifmesh-test-ca.crt) and the signaling certificate it signed, for localhost and 127.0.0.1. */
export function makeTlsCerts(dir: string): { ca: TestCert; server: TestCert } {
  const certs = path.join(dir, 'certs');
  mkdirSync(certs, { recursive: true });
  const ca = makeCa(certs);
  return { ca, server: makeServerCert(certs, ca, 'signaling', ['localhost', '127.0.0.1']) };
}

/** The SHA-256 fingerprint of the certificate served on 127.0.0.1:`port` (any certificate accepted). */
export function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, timeout: 5_000 }, () => {
      resolve(s.getPeerX509Certificate()!.fingerprint256);
      s.end();
    });
    s.on('error', reject);
    s.on('timeout', () => s.destroy(new Error(`no TLS answer on ${port}`)));
  });
}
