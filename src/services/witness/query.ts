// The runbook's query language (CONTRACT §3), parsed into a store-independent form.
// Regular expressions use RE2 semantics (re2js): matching is linear in the input, so no pattern,
// however hostile, can backtrack for minutes as `(a+)+$` does in a backtracking engine. That is why
// a pattern needs no per-match timeout here, only a length cap and the query's overall deadline.
import { RE2JS } from 're2js';
import { DEFAULT_LIMIT, MAX_LIMIT, MAX_REGEX_LENGTH } from '../../protocol/witness.js';
import { parseDuration } from '../../util/duration.js';

export class QueryError extends Error {}

export type Literal = string | number | boolean | null;

export type Condition =
  | { path: string[]; op: 'eq' | 'ne'; value: Literal }
  | { path: string[]; op: 'gt' | 'gte' | 'lt' | 'lte'; value: string | number }
  | { path: string[]; op: 'in'; values: Literal[] }
  | { path: string[]; op: 'regex'; pattern: string };

export interface Cursor {
  tsMs: number;
  id: number;
}

export interface ParsedQuery {
  conditions: Condition[];
  fromMs: number | undefined;
  toMs: number | undefined;
  limit: number;
  after: Cursor | undefined;
}

const SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

export function parseTime(value: unknown, nowMs: number, where: string): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value !== 'string')
    throw new QueryError(`${where}: must be "now", a relative time like "-5m", or an ISO-8601 time`);
  if (value === 'now') return nowMs;
  // "-5m": the one duration grammar of ifmesh (src/util/duration.ts), a unit required.
  const ago = value.startsWith('-') && value.length <= 40 ? parseDuration(value.slice(1), null) : undefined;
  if (ago !== undefined) return nowMs - ago;
  if (ISO_DATE.test(value)) {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return t;
  }
  throw new QueryError(`${where}: "${value.slice(0, 40)}" is not "now", -N(s|m|h|d|w), or an ISO-8601 time`);
}

function literal(value: unknown, where: string): Literal {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return value as Literal;
  throw new QueryError(`${where}: must be a string, number, boolean or null`);
}

// Compiled patterns, shared by the query parser and the stores: a storm of one pattern compiles it
// once, and its DFA (built lazily, several ms on long values) is built once too.
const compiled = new Map<string, RE2JS>();

export function compileRegex(pattern: unknown, where: string): RE2JS {
  if (typeof pattern !== 'string') throw new QueryError(`${where}: regex must be a string`);
  if (pattern.length > MAX_REGEX_LENGTH)
    throw new QueryError(`${where}: regex is longer than ${MAX_REGEX_LENGTH} characters`);
  const known = compiled.get(pattern);
  if (known) return known;
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    throw new QueryError(`${where}: ${(err as Error).message}`);
  }
  if (compiled.size >= 500) compiled.clear();
  compiled.set(pattern, re);
  return re;
}

const OPS: Record<string, 'gt' | 'gte' | 'lt' | 'lte'> = { $gt: 'gt', $gte: 'gte', $lt: 'lt', $lte: 'lte' };

function conditionsFor(key: string, value: unknown): Condition[] {
  const where = `query.${key}`;
  const path = key.split('.');
  if (path.length > 8 || !path.every((s) => SEGMENT.test(s))) {
    throw new QueryError(`${where}: a key is up to 8 dot-separated names of A-Z a-z 0-9 _ -`);
  }
  if (Array.isArray(value))
    throw new QueryError(`${where}: to match any of several values use {"$in": [...]}`);
  if (value === null || typeof value !== 'object') return [{ path, op: 'eq', value: literal(value, where) }];
  const ops = Object.entries(value as Record<string, unknown>);
  if (ops.length === 0) throw new QueryError(`${where}: empty operator object`);
  return ops.map(([op, operand]): Condition => {
    if (op === 'regex' || op === '$regex') {
      compileRegex(operand, `${where}.${op}`);
      return { path, op: 'regex', pattern: operand as string };
    }
    if (op in OPS) {
      if (typeof operand !== 'number' && typeof operand !== 'string') {
        throw new QueryError(`${where}.${op}: must be a number or a string`);
      }
      return { path, op: OPS[op]!, value: operand };
    }
    if (op === '$ne') return { path, op: 'ne', value: literal(operand, `${where}.$ne`) };
    if (op === '$in') {
      if (!Array.isArray(operand) || operand.length === 0 || operand.length > 100) {
        throw new QueryError(`${where}.$in: must be an array of 1-100 values`);
      }
      return { path, op: 'in', values: operand.map((v, i) => literal(v, `${where}.$in[${i}]`)) };
    }
    throw new QueryError(
      `${where}: unknown operator "${op.slice(0, 20)}" (use regex, $gt, $gte, $lt, $lte, $ne, $in)`,
    );
  });
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.tsMs}:${c.id}`).toString('base64url');
}

function decodeCursor(value: unknown): Cursor {
  const m =
    typeof value === 'string'
      ? /^(-?\d{1,15}):(\d{1,15})$/.exec(Buffer.from(value, 'base64url').toString())
      : null;
  if (!m) throw new QueryError('cursor: not a cursor returned by this service');
  return { tsMs: Number(m[1]), id: Number(m[2]) };
}

const TOP_KEYS = new Set(['query', 'time_range', 'limit', 'cursor']);

/** Parses a POST /api/query body. Every error names the offending key. */
export function parseQuery(body: unknown, nowMs: number): ParsedQuery {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new QueryError('body: must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b))
    if (!TOP_KEYS.has(k))
      throw new QueryError(`${k.slice(0, 40)}: unknown field (use query, time_range, limit, cursor)`);
  const q = b.query ?? {};
  if (!q || typeof q !== 'object' || Array.isArray(q)) throw new QueryError('query: must be an object');
  const entries = Object.entries(q as Record<string, unknown>);
  if (entries.length > 32) throw new QueryError('query: at most 32 keys');
  const conditions = entries.flatMap(([k, v]) => conditionsFor(k, v));

  let fromMs: number | undefined;
  let toMs: number | undefined;
  if (b.time_range !== undefined) {
    const tr = b.time_range;
    if (!tr || typeof tr !== 'object' || Array.isArray(tr))
      throw new QueryError('time_range: must be {"from": …, "to": …}');
    const { from, to, ...rest } = tr as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra) throw new QueryError(`time_range.${extra.slice(0, 40)}: unknown field (use from, to)`);
    if (from !== undefined) fromMs = parseTime(from, nowMs, 'time_range.from');
    if (to !== undefined) toMs = parseTime(to, nowMs, 'time_range.to');
    if (fromMs !== undefined && toMs !== undefined && fromMs > toMs)
      throw new QueryError('time_range: from is after to');
  }
  let limit = DEFAULT_LIMIT;
  if (b.limit !== undefined) {
    if (typeof b.limit !== 'number' || !Number.isInteger(b.limit) || b.limit < 1 || b.limit > MAX_LIMIT) {
      throw new QueryError(`limit: must be a whole number from 1 to ${MAX_LIMIT}`);
    }
    limit = b.limit;
  }
  const after = b.cursor === undefined || b.cursor === null ? undefined : decodeCursor(b.cursor);
  return { conditions, fromMs, toMs, limit, after };
}
