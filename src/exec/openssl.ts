// openssl, for what node:crypto cannot do: making certificates.
import { UnreachableError } from '../errors.js';
import type { Exec } from '../util/exec.js';

/**
 * A development self-signed certificate (P-256, SAN localhost and 127.0.0.1) written to `certFile`
 * and `keyFile` (mode 0600 through umask-free openssl -out, tightened by the caller).
 */
export async function selfSignedCert(
  exec: Exec,
  o: { certFile: string; keyFile: string; days: number; cn?: string },
): Promise<void> {
  const cn = o.cn ?? 'localhost';
  const args = [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    o.keyFile,
    '-out',
    o.certFile,
    '-days',
    String(o.days),
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=DNS:${cn},DNS:localhost,IP:127.0.0.1`,
  ];
  const r = await exec('openssl', args, { timeoutMs: 30_000 }).catch((err: Error) => {
    throw new UnreachableError(`openssl cannot be run: ${err.message}`, 'apt-get install openssl');
  });
  if (r.code !== 0) throw new UnreachableError(`openssl req failed: ${r.stderr.trim().split('\n').at(-1)}`);
}
