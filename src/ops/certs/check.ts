// The certificate check (the runbook's certificate-rotation-procedure.sh step 1 and the daily
// maintenance's days-left line), with node:crypto's X509Certificate: expiry, the chain in the file,
// and whether the key belongs to the certificate.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type { MeshConfig } from '../../config/load.js';
import { UsageError } from '../../errors.js';
import { endpointHosts, planEndpoints } from '../deploy/endpoints.js';
import { DEFAULT_THRESHOLDS } from '../monitoring/thresholds.js';

const DAY_MS = 86_400_000;

export type CertStatus = 'ok' | 'expiring' | 'expired' | 'not_yet_valid' | 'invalid';

export interface CertCheck {
  cert: string;
  key: string | null;
  subject: string;
  issuer: string;
  not_before: string;
  not_after: string;
  /** Whole days left, floored as the runbook's shell arithmetic does; negative once expired. */
  days_left: number;
  self_signed: boolean;
  /** Certificates in the file (leaf first) and whether each is signed by the next (or itself, last). */
  chain_length: number;
  chain_ok: boolean;
  /** null without --key. */
  key_matches: boolean | null;
  status: CertStatus;
  problems: string[];
  warn_days: number;
  /** Checked against the fleet: the CA file its clients trust (null: the system's), the hosts they dial. */
  trusted_by?: string | null;
  hosts?: string[];
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** A certificate's validity window (ms since the epoch) and its whole days left at `now`, floored
 * as the runbook's shell arithmetic does (negative once expired). */
export function certificateWindow(
  cert: X509Certificate,
  now: number,
): { notBefore: number; notAfter: number; daysLeft: number } {
  const notAfter = Date.parse(cert.validTo);
  return { notBefore: Date.parse(cert.validFrom), notAfter, daysLeft: Math.floor((notAfter - now) / DAY_MS) };
}

/** Whether the PEM private key `key` belongs to `cert`; throws when `key` is not a private key. */
export function keyMatchesCertificate(cert: X509Certificate, key: string | Buffer): boolean {
  return cert.checkPrivateKey(createPrivateKey(key));
}

/**
 * Why a client of the fleet would refuse the chain `certs` (leaf first): it trusts only `caFile`
 * (--ca, IFMESH_CA_FILE) and dials `hosts` (bare: endpointHosts, hostOf). Empty: it would accept it. A self-signed certificate
 * trusted as itself (the CA file is the certificate) is issued by it.
 */
export function fleetTrustProblems(
  certs: X509Certificate[],
  o: { caFile?: string | undefined; hosts: string[] },
): string[] {
  const problems: string[] = [];
  const leaf = certs[0];
  if (!leaf) return problems;
  if (o.caFile) {
    // Unreadable or no PEM: loadTrust names that with its fix before any command gets here.
    const cas = readCertificateChain(o.caFile);
    const issued = certs.some((c) =>
      cas.some(
        (ca) => c.fingerprint256 === ca.fingerprint256 || (c.checkIssued(ca) && c.verify(ca.publicKey)),
      ),
    );
    if (cas.length && !issued)
      problems.push(
        `not issued by ${o.caFile} (--ca, IFMESH_CA_FILE), the CA the fleet verifies its instances with: agents, nginx and ifmesh would refuse it`,
      );
  }
  // An address is checked against the certificate's IP names, a name against its DNS names.
  const missing = [...new Set(o.hosts)].filter((h) => (isIP(h) ? !leaf.checkIP(h) : !leaf.checkHost(h)));
  if (missing.length)
    problems.push(
      `does not name ${missing.join(', ')} (its subjectAltName), which clients dial: they would refuse it`,
    );
  return problems;
}

/**
 * What a fleet's clients trust and dial, to check certificate file `cert` against: its CA file
 * (--ca, IFMESH_CA_FILE) and the hosts of its endpoints. Undefined when it names no CA file (clients
 * use the system's). A CA file that is the fleet's own certificate (self-signed, trusted as itself)
 * is replaced with it, so only the hosts are checked then.
 */
export function fleetTrust(
  config: MeshConfig,
  caFile: string | undefined,
  cert: string,
): { caFile?: string; hosts: string[] } | undefined {
  if (!caFile) return undefined;
  const own = [cert, config.signalingTlsCert].some((f) => f && path.resolve(f) === path.resolve(caFile));
  let hosts: string[] = [];
  try {
    hosts = endpointHosts(planEndpoints(config, caFile));
  } catch {
    // TLS half configured: its own check names that
  }
  return { ...(own ? {} : { caFile }), hosts };
}

/** The certificates of PEM file `file`, leaf first; empty when it cannot be read or holds none. */
export function readCertificateChain(file: string): X509Certificate[] {
  try {
    return splitPem(readFileSync(file, 'utf8')).map((p) => new X509Certificate(p));
  } catch {
    return [];
  }
}

export async function checkCertificate(o: {
  cert: string;
  key?: string | undefined;
  warnDays: number;
  now: number;
  /** Whom the fleet's clients trust and what they dial: a certificate they would refuse is invalid. */
  trust?: { caFile?: string | undefined; hosts: string[] } | undefined;
}): Promise<CertCheck> {
  const text = await fs.readFile(o.cert, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(
      `cannot read certificate ${o.cert}: ${err.code ?? err.message}`,
      'pass --cert FILE (PEM)',
    );
  });
  const pems = splitPem(text);
  if (pems.length === 0) throw new UsageError(`${o.cert} holds no PEM certificate`, 'pass --cert FILE (PEM)');
  let certs: X509Certificate[];
  try {
    certs = pems.map((p) => new X509Certificate(p));
  } catch (err) {
    throw new UsageError(`${o.cert}: not a valid certificate (${(err as Error).message})`);
  }
  const leaf = certs[0]!;
  const problems: string[] = [];
  let chainOk = true;
  for (let i = 0; i < certs.length; i++) {
    const c = certs[i]!;
    const issuer = certs[i + 1] ?? (c.checkIssued(c) ? c : undefined);
    if (!issuer) continue; // the root is not in the file: the system's trust store vouches for it
    if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey)) {
      chainOk = false;
      problems.push(
        `certificate ${i + 1} in the file is not signed by ${i + 1 < certs.length ? `certificate ${i + 2}` : 'itself'}`,
      );
    }
  }
  let keyMatches: boolean | null = null;
  if (o.key) {
    const keyText = await fs.readFile(o.key, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read key ${o.key}: ${err.code ?? err.message}`, 'pass --key FILE (PEM)');
    });
    try {
      keyMatches = keyMatchesCertificate(leaf, keyText);
    } catch (err) {
      throw new UsageError(`${o.key}: not a valid private key (${(err as Error).message})`);
    }
    if (!keyMatches) problems.push(`the key ${o.key} does not belong to the certificate`);
  }
  const { notBefore, notAfter, daysLeft } = certificateWindow(leaf, o.now);
  let status: CertStatus = 'ok';
  if (o.now >= notAfter) {
    status = 'expired';
    problems.push(`expired on ${new Date(notAfter).toISOString()}`);
  } else if (o.now < notBefore) {
    status = 'not_yet_valid';
    problems.push(`not valid before ${new Date(notBefore).toISOString()}`);
  } else if (daysLeft < o.warnDays) {
    status = 'expiring';
    // `certs rotate` renews by itself under its own threshold; a warning above it needs --force.
    const renew =
      daysLeft < DEFAULT_THRESHOLDS.certificate_days
        ? '`ifmesh certs rotate`'
        : `\`ifmesh certs rotate --force\` (without --force it renews under ${DEFAULT_THRESHOLDS.certificate_days} days left)`;
    problems.push(`expires in ${daysLeft} days (under ${o.warnDays}): renew with ${renew}`);
  }
  const refused = o.trust ? fleetTrustProblems(certs, o.trust) : [];
  problems.push(...refused);
  if (status === 'ok' && (!chainOk || keyMatches === false || refused.length)) status = 'invalid';
  return {
    cert: o.cert,
    key: o.key ?? null,
    subject: leaf.subject.replace(/\n/g, ', '),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    not_before: new Date(notBefore).toISOString(),
    not_after: new Date(notAfter).toISOString(),
    days_left: daysLeft,
    self_signed: leaf.checkIssued(leaf),
    chain_length: certs.length,
    chain_ok: chainOk,
    key_matches: keyMatches,
    status,
    problems,
    warn_days: o.warnDays,
    ...(o.trust ? { trusted_by: o.trust.caFile ?? null, hosts: [...new Set(o.trust.hosts)] } : {}),
  };
}
