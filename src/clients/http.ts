import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { type Dispatcher, request } from 'undici';
import { IfmeshError, UnreachableError } from '../errors.js';
import { formatDuration } from '../ui/units.js';
import { certificateFailure, certificateFix } from './tls-trust.js';

export interface HttpAnswer {
  status: number;
  text: string;
  json: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export interface HttpOptions {
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  dispatcher?: Dispatcher | undefined;
  signal?: AbortSignal | undefined;
}

/** One HTTP exchange with a hard timeout. Network failures become UnreachableError (exit 3). */
export async function httpRequest(url: string, opts: HttpOptions = {}): Promise<HttpAnswer> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const signal = opts.signal
    ? AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)])
    : AbortSignal.timeout(timeoutMs);
  try {
    const res = await request(url, {
      method: opts.method ?? 'GET',
      body: opts.body,
      headers: {
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...opts.headers,
      },
      dispatcher: opts.dispatcher,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, text, json, headers: res.headers };
  } catch (err) {
    const cert = certificateFailure(err);
    if (cert)
      throw new UnreachableError(
        `${new URL(url).origin} failed certificate verification: ${cert.reason} (${cert.code})`,
        certificateFix(cert.code),
        UNVERIFIED_CERTIFICATE,
      );
    const e = err as Error & { code?: string };
    const why =
      e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT'
        ? `no answer within ${formatDuration(timeoutMs)}`
        : (e.code ?? e.message);
    const u = new URL(url);
    // Plain HTTP to a TLS port is answered by a closed socket or bytes that are no HTTP: one
    // handshake tells that from a dead service (a drill's http:// URL made a P1 of a healthy fleet).
    if (
      u.protocol === 'http:' &&
      e.name !== 'TimeoutError' &&
      (await speaksTls(u.hostname, Number(u.port || 80)))
    )
      throw new UnreachableError(
        `${u.origin} speaks TLS, not plain HTTP (${why})`,
        `use https://${u.host} (and wss:// for agents)`,
        PLAIN_HTTP_TO_TLS,
      );
    throw new UnreachableError(
      `${u.origin} is unreachable: ${why}`,
      'check that the service runs and the URL is right',
    );
  }
}

/** Whether host:port completes a TLS handshake within `timeoutMs` (whatever its certificate). */
export function speaksTls(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  // URL.hostname keeps an IPv6 address in brackets; a server name (SNI) is never an address.
  const bare = host.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: bare,
      port,
      rejectUnauthorized: false,
      ...(isIP(bare) ? {} : { servername: bare }),
    });
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('secureConnect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The code of httpRequest's error for a certificate this command could not verify. */
export const UNVERIFIED_CERTIFICATE = 'tls_verification_failed' as const;

/** The code of httpRequest's error for an http:// URL whose port speaks TLS. */
export const PLAIN_HTTP_TO_TLS = 'plain_http_to_tls' as const;

/**
 * What to do when the server answered, but not in a way this command can use: a certificate it could
 * not verify, or TLS on an http:// URL. Such a server runs; the fix is the command's URL or CA, not
 * the service (undefined for any other error).
 */
export function answeredFix(
  err: unknown,
): { code: typeof UNVERIFIED_CERTIFICATE | typeof PLAIN_HTTP_TO_TLS; fix: string } | undefined {
  if (!(err instanceof IfmeshError)) return undefined;
  if (err.code !== UNVERIFIED_CERTIFICATE && err.code !== PLAIN_HTTP_TO_TLS) return undefined;
  return { code: err.code, fix: err.hint ?? '' };
}

/**
 * Whether `err` is that error: the server completed the TLS handshake, but this command could not
 * verify its certificate (no --ca, expired, another name); its hint says what to do.
 */
export function isUnverifiedCertificate(err: unknown): err is IfmeshError {
  return err instanceof IfmeshError && err.code === UNVERIFIED_CERTIFICATE;
}
