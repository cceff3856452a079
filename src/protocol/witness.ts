// IF.witness wire shapes (CONTRACT §3) and the validation shared by the service and its clients.

/** Top-level fields that the store indexes when they hold strings. */
export const INDEXED_FIELDS = [
  'event',
  'agent_id',
  'peer_id',
  'trace_id',
  'deployment_id',
  'incident_id',
  'failover_id',
  'severity',
] as const;

export const MAX_BATCH = 1000;
export const MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 10_000;
export const MAX_REGEX_LENGTH = 256;

export interface WitnessEvent {
  event: string;
  timestamp?: string;
  idempotency_key?: string;
  [field: string]: unknown;
}

export class EventInvalidError extends Error {}

const EVENT_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

export interface NormalizedEvent {
  /** The event as submitted, with `timestamp` filled in if it was absent. */
  doc: Record<string, unknown>;
  tsMs: number;
  idempotencyKey: string | undefined;
}

// A batch's events share one arrival time: its ISO form is made once, not once per event.
let lastIso = { ms: Number.NaN, iso: '' };
function isoTime(ms: number): string {
  if (lastIso.ms !== ms) lastIso = { ms, iso: new Date(ms).toISOString() };
  return lastIso.iso;
}

/**
 * Checks one submitted event; `where` names it in errors ("event", or a batch index shown as "[3]",
 * so that a batch makes no label per event). The value is left as it is unless `owned` (the caller
 * parsed it and needs no copy): then a missing timestamp is added to it in place.
 */
export function normalizeEvent(
  value: unknown,
  nowMs: number,
  where: string | number,
  owned = false,
): NormalizedEvent {
  if (typeof where === 'number') where = `[${where}]`;
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new EventInvalidError(`${where}: must be a JSON object`);
  const given = value as Record<string, unknown>;
  const doc = owned ? given : { ...given };
  if (typeof doc.event !== 'string' || !EVENT_NAME.test(doc.event)) {
    throw new EventInvalidError(`${where}.event: required, 1-128 characters of A-Z a-z 0-9 _ . : -`);
  }
  if ('id' in doc) throw new EventInvalidError(`${where}.id: assigned by the witness; remove it`);
  let tsMs = nowMs;
  if (doc.timestamp === undefined) {
    doc.timestamp = isoTime(nowMs);
  } else if (
    typeof doc.timestamp !== 'string' ||
    !ISO.test(doc.timestamp) ||
    Number.isNaN(Date.parse(doc.timestamp))
  ) {
    throw new EventInvalidError(`${where}.timestamp: must be an ISO-8601 time such as 2026-11-22T21:44:37Z`);
  } else {
    tsMs = Date.parse(doc.timestamp);
  }
  const key = doc.idempotency_key;
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 200)) {
    throw new EventInvalidError(`${where}.idempotency_key: must be a string of 1-200 characters`);
  }
  if (
    doc.metadata !== undefined &&
    (doc.metadata === null || typeof doc.metadata !== 'object' || Array.isArray(doc.metadata))
  ) {
    throw new EventInvalidError(`${where}.metadata: must be an object`);
  }
  return { doc, tsMs, idempotencyKey: key as string | undefined };
}
