import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The URL of a request target. A path starting with `//` is a valid HTTP path but a
 * protocol-relative URL to `new URL(path, base)`, which throws; anything unparsable is undefined,
 * for the caller to answer 400 — never an exception that ends the server.
 */
export function requestUrl(target: string | undefined, origin: string): URL | undefined {
  const t = target ?? '/';
  try {
    return t.startsWith('/') ? new URL(`${origin}${t}`) : new URL(t, origin);
  } catch {
    return undefined;
  }
}

/** 400 for a request target `requestUrl` could not read. */
export const badTarget = () =>
  new HttpError(400, 'bad_request', 'the request target is not a valid URL path');

/** Compact JSON: the runbook greps raw bodies (`grep -q '"status":"ok"'`). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...extraHeaders,
  });
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  err: HttpError,
  extraHeaders: Record<string, string> = {},
): void {
  sendJson(res, err.status, { error: { code: err.code, message: err.message } }, extraHeaders);
}

/** Reads the whole body up to `limit` bytes; 413 beyond it. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit)
    throw new HttpError(413, 'body_too_large', `body is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, 'body_too_large', `body is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Bodies are JSON whatever the Content-Type: the runbook posts with bare `curl -d`. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const raw = await readBody(req, limit);
  if (raw.length === 0) throw new HttpError(400, 'invalid_json', 'body is empty; send a JSON document');
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `body is not valid JSON: ${(err as Error).message}`);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time bearer check: both sides are hashed first so lengths leak nothing either. */
export function bearerMatches(req: IncomingMessage, expected: string): boolean {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(header);
  const given = m ? m[1]!.trim() : '';
  const ok = timingSafeEqual(digest(given), digest(expected));
  return ok && given.length > 0 && expected.length > 0;
}
