// The certificates an https:// or wss:// connection of ifmesh trusts: the system's CAs plus the
// operator's own CA file (--ca, IFMESH_CA_FILE), for signaling and witness certificates signed by a
// private or self-signed CA. Verification is never turned off to reach such a server: the CA is
// added instead, so a server presenting anything else is still refused.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import { UsageError } from '../errors.js';

export interface Trust {
  /** The CA file, absolute. */
  caFile: string;
  /** What to pass as `ca` to tls.connect (undici, ws): the system's CAs and the file's. */
  ca: string[];
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads a PEM CA file; a missing, unreadable or certificate-less file is a usage error naming `from`. */
export function loadTrust(file: string, cwd: string, from: string): Trust {
  const caFile = path.resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(caFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${from} ${caFile} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`,
      'point it at the PEM file of the CA that signed the server certificates',
      'ca_file',
    );
  }
  const certs = text.match(PEM_CERT) ?? [];
  if (certs.length === 0)
    throw new UsageError(
      `${from} ${caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      'point it at the CA certificate (PEM), not at a key or a DER file',
      'ca_file',
    );
  return { caFile, ca: [...rootCertificates, ...certs] };
}

// undici is loaded on first use: this module is on every command's start-up path (the CLI reads
// --ca before any command runs), and loading undici costs ~60 ms that `ifmesh --help` never needs.
const require = createRequire(import.meta.url);

/** An undici dispatcher whose TLS connections verify against `t` (and nothing less). */
export function trustDispatcher(t: Trust): Dispatcher {
  const { Agent } = require('undici') as typeof import('undici');
  return new Agent({ connect: { ca: t.ca, rejectUnauthorized: true } });
}

/** OpenSSL's and Node's codes for a certificate the client refused. */
const CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The code of a certificate verification failure in `err` or its causes; undefined for anything else. */
export function certificateFailure(err: unknown): { code: string; reason: string } | undefined {
  for (
    let e = err as (Error & { code?: string; reason?: string; cause?: unknown }) | undefined, i = 0;
    e && i < 5;
    i++
  ) {
    if (e.code && CERT_CODES.has(e.code)) return { code: e.code, reason: e.reason ?? e.message };
    e = e.cause as typeof e;
  }
  return undefined;
}

/** What to do about a certificate the client refused. */
export function certificateFix(code: string): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return 'dial the server by a name its certificate covers (SIGNALING_HOST, SIGNALING_PUBLIC_URL), or reissue the certificate with that name';
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    return "renew the server's certificate (ifmesh certs rotate)";
  // With a CA already given, the server's certificate is not from it (a pair copied into place):
  // the drill's operator was told to pass --ca while IFMESH_CA_FILE was set.
  return 'pass --ca FILE (or set IFMESH_CA_FILE) with the PEM of the CA that signed the server certificate; if one is set, that CA did not issue it: ifmesh certs check names what is wrong';
}
