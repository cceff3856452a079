// The signaling admin API's identity calls (POST /admin/agents/rebind, GET /admin/agents/bindings),
// with the errors SignalingClient raises for the other calls. Beside src/clients/signaling.ts, which
// another change owns, until SignalingClient takes them as methods.
import type { z } from 'zod';
import { UnauthorizedError } from '../errors.js';
import { errorResponseSchema } from '../protocol/signaling-api.js';
import {
  type BindingsResponse,
  bindingsResponseSchema,
  type RebindRequest,
  type RebindResponse,
  rebindResponseSchema,
} from '../protocol/signaling-identity.js';
import { httpRequest } from './http.js';
import { type SignalingClientOptions, SignalingHttpError, SignalingMalformedError } from './signaling.js';

async function adminCall<T>(
  base: string,
  path: string,
  o: SignalingClientOptions,
  schema: z.ZodType<T>,
  body?: unknown,
): Promise<T> {
  const url = `${base}${path}`;
  const hint =
    'set SIGNALING_ADMIN_TOKEN, or run against the local stack whose admin.token is in the state dir';
  if (!o.adminToken) throw new UnauthorizedError(`no signaling admin token for ${url}`, hint);
  const a = await httpRequest(url, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headers: { authorization: `Bearer ${o.adminToken}` },
    timeoutMs: o.timeoutMs ?? 5_000,
    dispatcher: o.dispatcher,
    signal: o.signal,
  });
  if (a.status === 401 || a.status === 403)
    throw new UnauthorizedError(`${url} refused the admin token (${a.status})`, hint);
  if (a.status !== 200) {
    const e = errorResponseSchema.safeParse(a.json);
    const why = e.success ? `${e.data.error.code}: ${e.data.error.message}` : a.text.slice(0, 120);
    throw new SignalingHttpError(
      url,
      a.status,
      e.success ? e.data.error.code : null,
      `${url} answered HTTP ${a.status} (${why})`,
    );
  }
  const r = schema.safeParse(a.json);
  if (!r.success) throw new SignalingMalformedError(url, `${url} answered HTTP 200 with a malformed body`);
  return r.data;
}

/** POST /admin/agents/rebind on the signaling server at `base` (its HTTP URL). */
export function rebindAgent(
  base: string,
  body: RebindRequest,
  o: SignalingClientOptions,
): Promise<RebindResponse> {
  return adminCall(base, '/admin/agents/rebind', o, rebindResponseSchema, body);
}

/** GET /admin/agents/bindings. */
export function listBindings(base: string, o: SignalingClientOptions): Promise<BindingsResponse> {
  return adminCall(base, '/admin/agents/bindings', o, bindingsResponseSchema);
}
