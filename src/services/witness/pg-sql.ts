// SQL for the PostgreSQL witness store: the query language translated to jsonb conditions, the
// regex filter applied here (RE2 semantics), and the transaction and bulk-row helpers that appends
// and imports share.
import type pg from 'pg';
import type { RE2JS } from 're2js';
import { INDEXED_FIELDS } from '../../protocol/witness.js';
import type { Condition, ParsedQuery } from './query.js';
import { containsLike, regexPrefilter } from './regex-prefilter.js';

const INDEXED = new Set<string>(INDEXED_FIELDS);

export const EVENT_COLUMNS = ['id', 'ts_ms', 'body', 'idem_key', 'content_hash', ...INDEXED_FIELDS];
const N = EVENT_COLUMNS.length;
// Events, nodes and the new size in one statement (data-modifying CTEs): one round trip, not three.
const WRITE_ROWS = `WITH e AS (INSERT INTO events (${EVENT_COLUMNS.join(', ')}) SELECT * FROM unnest(${EVENT_COLUMNS.map(
  (_, i) => `$${i + 1}::${i < 2 ? 'bigint' : 'text'}[]`,
).join(', ')})),
  n AS (INSERT INTO nodes (level, idx, hash) SELECT * FROM unnest($${N + 1}::int[], $${N + 2}::bigint[], $${N + 3}::bytea[]))
  UPDATE head SET size = $${N + 4}`;
// The same without a transaction around it, for an instance that knows the log's size from its own
// last append: head moves from that size to the new one, or (another instance appended since)
// nothing is written at all and the caller takes the locked path. A concurrent UPDATE of head waits
// for the row lock, then re-reads the row and no longer finds the size it expected.
const WRITE_ROWS_IF_SIZE = `WITH h AS (UPDATE head SET size = $${N + 4} WHERE size = $${N + 5} RETURNING size),
  e AS (INSERT INTO events (${EVENT_COLUMNS.join(', ')}) SELECT * FROM unnest(${EVENT_COLUMNS.map(
    (_, i) => `$${i + 1}::${i < 2 ? 'bigint' : 'text'}[]`,
  ).join(', ')}) WHERE EXISTS (SELECT 1 FROM h)),
  n AS (INSERT INTO nodes (level, idx, hash) SELECT * FROM unnest($${N + 1}::int[], $${N + 2}::bigint[], $${N + 3}::bytea[]) WHERE EXISTS (SELECT 1 FROM h))
  SELECT count(*)::int AS moved FROM h`;

/**
 * A pooled connection, checked out. The pool listens for errors only on idle connections: one the
 * server drops while it is checked out (a restart's "terminating connection due to administrator
 * command") emits 'error' on the client itself, which with no listener ends the process. This one
 * listens until `release`, and a connection that errored is not given back to the pool.
 */
export async function checkout(
  pool: pg.Pool,
): Promise<{ c: pg.PoolClient; release: (broken: boolean) => void }> {
  const c = await pool.connect();
  let dropped = false;
  const onError = () => {
    dropped = true;
  };
  c.on('error', onError);
  return {
    c,
    release: (broken) => {
      c.off('error', onError);
      c.release(broken || dropped);
    },
  };
}

/**
 * Writes as writeRows does, in one statement and one round trip, if head still holds `expected`;
 * false (and nothing written) if it does not.
 */
export async function writeRowsIfSize(
  pool: pg.Pool,
  columns: unknown[][],
  nodes: [number[], number[], Buffer[]],
  size: number,
  expected: number,
): Promise<boolean> {
  const r = await pool.query(WRITE_ROWS_IF_SIZE, [...columns, ...nodes, size, expected]);
  return r.rows[0]?.moved === 1;
}

/** Runs fn in one transaction on a pooled connection; a connection that failed is not reused. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const { c, release } = await checkout(pool);
  let broken = false;
  try {
    await c.query('BEGIN');
    const result = await fn(c);
    await c.query('COMMIT');
    return result;
  } catch (err) {
    broken = true;
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    release(broken);
  }
}

/** Events (one array per EVENT_COLUMNS column), Merkle nodes, and the log's new size, in one go. */
export async function writeRows(
  c: pg.PoolClient,
  columns: unknown[][],
  nodes: [number[], number[], Buffer[]],
  size: number,
): Promise<void> {
  await c.query(WRITE_ROWS, [...columns, ...nodes, size]);
}

function valueAt(doc: unknown, path: string[]): unknown {
  let v = doc;
  for (const p of path) {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

export function matchesAll(body: string, regexes: { path: string[]; re: RE2JS }[]): boolean {
  const doc = JSON.parse(body) as unknown;
  return regexes.every(({ path, re }) => {
    const v = valueAt(doc, path);
    // test() searches like matcher().find() but takes re2js's faster DFA path (about 15x here).
    return typeof v === 'string' && re.test(v);
  });
}

const CMP = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

// JSON types are respected as on SQLite: jsonb equality never makes false equal 0 or "600" equal 600.
function literalSql(path: string[], value: unknown, params: unknown[], op = '='): string {
  // Equality needs no collation, and naming one would keep PostgreSQL off the column's index.
  if (typeof value === 'string' && path.length === 1 && INDEXED.has(path[0]!))
    return `${path[0]}${op === '=' ? '' : ' COLLATE "C"'} ${op} $${params.push(value)}`;
  const at = `(body::jsonb #> $${params.push(path)}::text[])`;
  if (op === '=') return `COALESCE(${at} = $${params.push(JSON.stringify(value))}::jsonb, FALSE)`;
  if (typeof value === 'number')
    return `(jsonb_typeof(${at}) = 'number' AND ${at} ${op} $${params.push(JSON.stringify(value))}::jsonb)`;
  if (typeof value === 'string')
    return `(jsonb_typeof(${at}) = 'string' AND (${at} #>> '{}') COLLATE "C" ${op} $${params.push(value)})`;
  return 'FALSE';
}

export function conditionSql(c: Condition, params: unknown[]): string {
  switch (c.op) {
    case 'eq':
      return `COALESCE(${literalSql(c.path, c.value, params)}, FALSE)`;
    case 'ne':
      return `NOT COALESCE(${literalSql(c.path, c.value, params)}, FALSE)`;
    case 'in':
      return `(${c.values.map((v) => `COALESCE(${literalSql(c.path, v, params)}, FALSE)`).join(' OR ')})`;
    case 'regex':
      throw new Error('regex conditions are evaluated outside SQL');
    default:
      return `COALESCE(${literalSql(c.path, c.value, params, CMP[c.op])}, FALSE)`;
  }
}

/**
 * What PostgreSQL can check of a regex condition before a row leaves the database: that the text
 * contains each substring every match must contain. A value containing one shows it in the JSON body
 * too (the literals are printable ASCII JSON leaves alone), and an indexed field has its own column.
 * A case-insensitive pattern ((?i)…) is matched with ILIKE under the "C" collation, which folds
 * ASCII letters alone, whatever the database's locale (a Turkish one folds I to ı).
 * TRUE when the pattern yields no literal: re2js, which confirms every row, is then the only filter.
 */
export function regexPrefilterSql(c: Extract<Condition, { op: 'regex' }>, params: unknown[]): string {
  const { literals, caseInsensitive } = regexPrefilter(c.pattern);
  if (literals.length === 0) return 'TRUE';
  const column = c.path.length === 1 && INDEXED.has(c.path[0]!) ? c.path[0]! : 'body';
  const op = caseInsensitive ? 'ILIKE' : 'LIKE';
  const collate = caseInsensitive ? ' COLLATE "C"' : '';
  return literals.map((l) => `${column} ${op} $${params.push(containsLike(l))}${collate}`).join(' AND ');
}

/**
 * The statements that read one query's pages, oldest first: `sqlFirst` takes `params` and then the
 * page size; `sqlAfter` takes `params`, the (ts_ms, id) of the last row read, then the page size.
 */
export function pageSql(q: ParsedQuery): { sqlFirst: string; sqlAfter: string; params: unknown[] } {
  const params: unknown[] = [];
  const where = ['body IS NOT NULL'];
  if (q.fromMs !== undefined) where.push(`ts_ms >= $${params.push(q.fromMs)}`);
  if (q.toMs !== undefined) where.push(`ts_ms <= $${params.push(q.toMs)}`);
  for (const cond of q.conditions)
    where.push(cond.op === 'regex' ? regexPrefilterSql(cond, params) : conditionSql(cond, params));
  const n = params.length;
  const select = (cond: string, limit: number) =>
    `SELECT id, ts_ms, body FROM events WHERE ${cond} ORDER BY ts_ms, id LIMIT $${limit}`;
  return {
    sqlFirst: select(where.join(' AND '), n + 1),
    sqlAfter: select([...where, `(ts_ms, id) > ($${n + 1}, $${n + 2})`].join(' AND '), n + 3),
    params,
  };
}
