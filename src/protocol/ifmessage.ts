import { isAgentId } from './ids.js';

/** The wire form of an IFMessage (CONTRACT §2). Extra fields are allowed and are covered by `sig`. */
export interface UnsignedIFMessage {
  v: 1;
  id: string;
  from: string;
  to: string;
  type: string;
  ts: string;
  nonce: string;
  payload: Record<string, unknown>;
  [extra: string]: unknown;
}

export interface IFMessage extends UnsignedIFMessage {
  sig: string;
}

export const MESSAGE_MAX_BYTES = 64 * 1024;
export const SIGNATURE_DOMAIN = 'ifmesh/IFMessage/v1';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TYPE = /^[a-z][a-z0-9_.-]{0,63}$/;
// RFC 3339 in UTC, as Date.prototype.toISOString writes it (milliseconds optional).
const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const NONCE = /^[A-Za-z0-9_-]{22}$/;
const SIG = /^[A-Za-z0-9_-]{86}$/;

export type ShapeResult = { ok: true; message: IFMessage; tsMs: number } | { ok: false; detail: string };

/** Checks every field's shape; says which field is wrong. Does not check the signature. */
export function checkShape(value: unknown): ShapeResult {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    return { ok: false, detail: 'not a JSON object' };
  const m = value as Record<string, unknown>;
  if (m.v !== 1) return { ok: false, detail: 'v must be 1' };
  if (typeof m.id !== 'string' || !UUID.test(m.id)) return { ok: false, detail: 'id must be a UUID' };
  if (!isAgentId(m.from)) return { ok: false, detail: 'from must be an agent id' };
  if (!isAgentId(m.to)) return { ok: false, detail: 'to must be an agent id' };
  if (typeof m.type !== 'string' || !TYPE.test(m.type))
    return { ok: false, detail: 'type must match [a-z][a-z0-9_.-]*' };
  if (typeof m.ts !== 'string' || !TS.test(m.ts))
    return { ok: false, detail: 'ts must be an ISO-8601 UTC timestamp' };
  const tsMs = Date.parse(m.ts);
  if (Number.isNaN(tsMs)) return { ok: false, detail: 'ts is not a real date' };
  if (typeof m.nonce !== 'string' || !NONCE.test(m.nonce))
    return { ok: false, detail: 'nonce must be 16 bytes of base64url' };
  if (!m.payload || typeof m.payload !== 'object' || Array.isArray(m.payload)) {
    return { ok: false, detail: 'payload must be a JSON object' };
  }
  if (typeof m.sig !== 'string' || !SIG.test(m.sig))
    return { ok: false, detail: 'sig must be 64 bytes of base64url' };
  return { ok: true, message: m as IFMessage, tsMs };
}
