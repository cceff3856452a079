import type { Dispatcher } from 'undici';
import { httpRequest } from '../../clients/http.js';
import { CheckFailedError, UnauthorizedError, UsageError } from '../../errors.js';
import { parseDuration, UNIT_MS } from '../../util/duration.js';

export interface QueryFlags {
  event?: string;
  agent?: string;
  peer?: string;
  trace?: string;
  deployment?: string;
  incident?: string;
  failover?: string;
  since?: string;
  until?: string;
  where?: string[];
  regex?: string[];
  limit?: string;
}

function whereValue(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text) || text === 'true' || text === 'false' || text === 'null')
    return JSON.parse(text);
  return text;
}

/** `--since 90m` as POST /api/query's relative time: "-" and one whole number of one unit ("-90m"). */
function relative(text: string, flag: string): string {
  if (text === 'now' || /^\d{4}-\d{2}-\d{2}/.test(text)) return text;
  const ms = parseDuration(text.replace(/^-/, ''), null);
  if (ms === undefined)
    throw new UsageError(
      `${flag} ${text} is not a duration like 30s, 5m, 1h, 7d or an ISO time`,
      `e.g. ${flag} 1h`,
    );
  const unit = (['w', 'd', 'h', 'm', 's'] as const).find((u) => ms % UNIT_MS[u] === 0 && ms > 0);
  return unit ? `-${ms / UNIT_MS[unit]}${unit}` : `-${ms}ms`;
}

/** Builds a POST /api/query body from shorthand flags; a JSON argument is used as it is. */
export function buildQueryBody(json: string | undefined, f: QueryFlags): Record<string, unknown> {
  if (json !== undefined) {
    try {
      const body = JSON.parse(json) as unknown;
      if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new UsageError(
      'the query argument is not a JSON object',
      `e.g. '{"query":{"event":"x"},"time_range":{"from":"-1h","to":"now"}}'`,
    );
  }
  const query: Record<string, unknown> = {};
  const pairs: Array<[string, string | undefined]> = [
    ['event', f.event],
    ['agent_id', f.agent],
    ['peer_id', f.peer],
    ['trace_id', f.trace],
    ['deployment_id', f.deployment],
    ['incident_id', f.incident],
    ['failover_id', f.failover],
  ];
  for (const [k, v] of pairs) if (v !== undefined) query[k] = v;
  for (const w of f.where ?? []) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new UsageError(`--where ${w} is not KEY=VALUE`, 'e.g. --where metadata.state=failed');
    query[w.slice(0, eq)] = whereValue(w.slice(eq + 1));
  }
  for (const r of f.regex ?? []) {
    const eq = r.indexOf('=');
    if (eq <= 0) throw new UsageError(`--regex ${r} is not KEY=PATTERN`, 'e.g. --regex event=.*error.*');
    query[r.slice(0, eq)] = { regex: r.slice(eq + 1) };
  }
  const body: Record<string, unknown> = { query };
  if (f.since || f.until)
    body.time_range = {
      from: relative(f.since ?? '1h', '--since'),
      to: f.until ? relative(f.until, '--until') : 'now',
    };
  if (f.limit !== undefined) {
    const n = Number(f.limit);
    if (!Number.isInteger(n) || n < 1 || n > 10_000)
      throw new UsageError(`--limit ${f.limit} must be 1-10000`);
    body.limit = n;
  }
  return body;
}

export interface QueryAnswer {
  results: Record<string, unknown>[];
  count: number;
  next_cursor: string | null;
}

export async function runWitnessQuery(opts: {
  url: string;
  body: Record<string, unknown>;
  token?: string | undefined;
  dispatcher?: Dispatcher | undefined;
  timeoutMs?: number;
}): Promise<QueryAnswer> {
  const res = await httpRequest(`${opts.url.replace(/\/+$/, '')}/api/query`, {
    method: 'POST',
    body: JSON.stringify(opts.body),
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
    dispatcher: opts.dispatcher,
    timeoutMs: opts.timeoutMs ?? 10_000,
  });
  const err = (res.json as { error?: { message?: string } })?.error?.message;
  if (res.status === 400) throw new UsageError(`witness refused the query: ${err}`);
  if (res.status === 401)
    throw new UnauthorizedError('witness needs a query token', 'set WITNESS_QUERY_TOKEN');
  if (res.status !== 200)
    throw new CheckFailedError(`witness query failed with ${res.status}${err ? `: ${err}` : ''}`);
  return res.json as QueryAnswer;
}
