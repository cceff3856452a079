import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { openCheckpoint, signCheckpoint } from '../../crypto/checkpoint.js';
import { type Signer, toBase64url } from '../../crypto/ed25519.js';
import { canonicalize } from '../../crypto/jcs.js';
import { EventInvalidError, MAX_BATCH, MAX_BODY_BYTES, normalizeEvent } from '../../protocol/witness.js';
import { AuthFailureLimiter } from '../http/auth-failures.js';
import {
  badTarget,
  bearerMatches,
  HttpError,
  readJson,
  requestUrl,
  sendError,
  sendJson,
} from '../http/util.js';
import { bodyWithoutId, canonicalEvent, contentHash as eventHash } from './event-body.js';
import { encodeCursor, parseQuery, QueryError } from './query.js';
import { type AppendItem, type AppendResult, QueryTimeoutError, type WitnessStore } from './store.js';

/**
 * Who may do what. Writers (agents, instances, commands) hold the write key; operators hold the
 * admin key, which may also write and query; readers hold the query token when one is set.
 */
export type WitnessRole = 'write' | 'read' | 'admin';

export interface WitnessServerDeps {
  store: WitnessStore;
  signer: Signer;
  /** Bearer key for writes (POST /api/log, /api/events). */
  apiKey: string;
  /**
   * Bearer key for admin calls (cleanup). Without one the write key does them too, as a single-key
   * deployment always did; `witness serve` warns about it.
   */
  adminKey?: string | undefined;
  /** When set, queries need it (or the admin key) as a bearer token. */
  queryToken?: string | undefined;
  /**
   * The shortest retention a cleanup may apply, in days (default 30): a cleanup asking to keep less
   * is refused, so no key can erase recent events, whatever timestamps they carry.
   */
  minRetentionDays?: number;
  /** How failed admin calls are audited without letting anyone flood the log (tests shrink it). */
  authFailures?: { burst?: number; refillMs?: number; globalBurst?: number; globalRefillMs?: number };
  now?: () => number;
  /**
   * Monotonic milliseconds for query deadlines and timings (default performance.now); give the
   * store the same one. Tests inject a fake clock to prove the 503 and slicing paths without timing.
   */
  monotonicNow?: () => number;
  /** Sign a checkpoint after this many new events … */
  checkpointEvery?: number;
  /** … or this often when anything was appended. */
  checkpointIntervalMs?: number;
  /** Time a query may take, from its arrival, before it is answered 503. */
  queryBudgetMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface WitnessServer {
  listen(port: number, host?: string): Promise<AddressInfo>;
  readonly url: string;
  readonly origin: string;
  /** Stops accepting, signs a last checkpoint and closes the store. Idempotent. */
  close(): Promise<void>;
  /** Signs a checkpoint now if the tree grew since the last one. */
  checkpoint(): Promise<void>;
  http: Server;
}

/**
 * How long a query may run from its arrival before it is answered 503 query_timeout. Callers are
 * promised an answer within 1 s; what the budget leaves is for what it cannot see: reading the
 * request before it "arrives", writing the answer, and the caller's own scheduling. On a loaded
 * 2-core host under 100 hostile queries at once that took up to ~75 ms past a 900 ms budget
 * (the regex-storm benchmark), so 850 ms keeps the slowest answer near 950 ms.
 */
export const QUERY_BUDGET_MS = 850;

export function witnessOrigin(publicKey: Uint8Array): string {
  return `ifmesh-witness/${createHash('sha256').update(publicKey).digest('hex').slice(0, 16)}`;
}

export function createWitnessServer(deps: WitnessServerDeps): WitnessServer {
  const now = deps.now ?? Date.now;
  const monotonicNow = deps.monotonicNow ?? (() => performance.now());
  const store = deps.store;
  const origin = witnessOrigin(deps.signer.publicKey);
  const every = deps.checkpointEvery ?? 1000;
  const budget = deps.queryBudgetMs ?? QUERY_BUDGET_MS;
  const log = deps.log ?? (() => {});
  const minRetentionDays = deps.minRetentionDays ?? 30;
  if (!Number.isInteger(minRetentionDays) || minRetentionDays < 1)
    throw new Error('minRetentionDays: a whole number of days, at least 1');

  const registry = new Registry();
  const m = {
    appended: new Counter({
      name: 'witness_events_appended_total',
      help: 'Events appended to the log',
      registers: [registry],
    }),
    requests: new Counter({
      name: 'witness_http_requests_total',
      help: 'HTTP requests',
      labelNames: ['route', 'status'],
      registers: [registry],
    }),
    unauthorized: new Counter({
      name: 'witness_unauthorized_attempts_total',
      help: 'Requests refused for a missing or wrong bearer token',
      registers: [registry],
    }),
    authSuppressed: new Counter({
      name: 'witness_auth_failures_unaudited_total',
      help: 'Failed admin calls over the audit rate limit: counted into a later entry, not each logged',
      registers: [registry],
    }),
    timeouts: new Counter({
      name: 'witness_query_timeouts_total',
      help: 'Queries stopped at their deadline',
      registers: [registry],
    }),
    checkpoints: new Counter({
      name: 'witness_checkpoints_signed_total',
      help: 'Signed checkpoints',
      registers: [registry],
    }),
    size: new Gauge({ name: 'witness_tree_size', help: 'Events in the log', registers: [registry] }),
  };

  let lastSigned = -1;
  let signing: Promise<void> = Promise.resolve();
  const checkpoint = (): Promise<void> => {
    signing = signing.then(async () => {
      const head = await store.treeHead();
      m.size.set(head.size);
      if (head.size === lastSigned) return;
      const cp = { origin, size: head.size, root: head.root, time: new Date(now()).toISOString() };
      const note = signCheckpoint(cp, deps.signer, origin);
      await store.saveCheckpoint({ size: cp.size, root: cp.root, time: cp.time, note });
      lastSigned = head.size;
      m.checkpoints.inc();
    });
    return signing;
  };
  const timer = setInterval(() => {
    checkpoint().catch((err) => log('error', 'checkpoint failed', { error: String(err) }));
  }, deps.checkpointIntervalMs ?? 10_000);
  timer.unref();
  const ready = store.latestCheckpoint().then((cp) => {
    lastSigned = cp?.size ?? -1;
  });

  // At most two queries run at once (each in time slices); the rest wait in order, and a query still
  // waiting at its deadline is answered 503 at once instead of adding to the load.
  let running = 0;
  const waiting: (() => void)[] = [];
  const withQuerySlot = async <T>(deadlineMs: number, fn: () => Promise<T>): Promise<T> => {
    if (running >= 2) {
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        timer = setTimeout(
          () => {
            const i = waiting.indexOf(wake);
            if (i >= 0) waiting.splice(i, 1);
            reject(new QueryTimeoutError('waited past the deadline'));
          },
          Math.max(0, deadlineMs - monotonicNow()),
        );
        waiting.push(wake);
      });
    }
    running += 1;
    try {
      return await fn();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };

  // The admin key can do everything; with no admin key configured, the write key administers.
  const tokensFor = (role: WitnessRole): string[] => {
    const admin = deps.adminKey || deps.apiKey;
    if (role === 'admin') return [admin];
    if (role === 'write') return deps.adminKey ? [deps.apiKey, deps.adminKey] : [deps.apiKey];
    return deps.queryToken ? [deps.queryToken, admin] : [];
  };
  const requireRole = async (req: IncomingMessage, role: WitnessRole, route: string) => {
    const tokens = tokensFor(role);
    if (tokens.length === 0) return;
    // Every token is compared (constant time each), so the answer's timing does not say which matched.
    const ok = tokens.map((t) => bearerMatches(req, t)).some(Boolean);
    if (ok) return;
    m.unauthorized.inc();
    // Answered once its audit entry (if it gets one) is written.
    if (role === 'admin') await auditAdminFailure(req, route);
    throw new HttpError(
      401,
      'unauthorized',
      `missing or wrong bearer token (Authorization: Bearer …); ${route} needs the ${role} key`,
    );
  };

  // Failed admin calls are audited in the log itself, as many as the limiter allows; the rest are
  // counted into the next entry or a summary, so 500 bad calls make a handful of entries, not 500.
  const authLimiter = new AuthFailureLimiter({
    ...deps.authFailures,
    onSummary: (suppressed) => {
      appendEvents({
        event: 'witness_auth_failures_suppressed',
        severity: 'warning',
        action: 'admin_auth_failure',
        metadata: { suppressed },
      }).catch((err) => log('error', 'could not audit failed admin calls', { error: String(err) }));
    },
  });
  const auditAdminFailure = async (req: IncomingMessage, route: string) => {
    const remote = req.socket.remoteAddress ?? 'unknown';
    const verdict = authLimiter.failure(remote);
    if (!verdict.audit) {
      m.authSuppressed.inc();
      return;
    }
    await appendEvents({
      event: 'witness_auth_failure',
      severity: 'warning',
      action: route,
      metadata: { remote, suppressed_before: verdict.suppressed },
    }).catch((err) => log('error', 'could not audit a failed admin call', { error: String(err) }));
  };

  // The parsed request becomes the store's rows, then is let go: nothing holds it while the group
  // commits (the request handler keeps only whether it was a batch). Held, a batch of 500 parsed
  // events outlived several young-generation collections, which copied it each time and then
  // promoted it: the garbage collector was a fifth of the main thread under batched ingest.
  const appendEvents = (body: unknown): Promise<{ ids: number[]; created: number }> => {
    let items: AppendItem[];
    try {
      items = toItems(body);
    } catch (err) {
      return Promise.reject(err);
    }
    return appended(store.append(items));
  };

  const toItems = (body: unknown): AppendItem[] => {
    const list = Array.isArray(body) ? body : [body];
    if (list.length === 0) throw new HttpError(400, 'invalid_event', 'empty batch');
    if (list.length > MAX_BATCH)
      throw new HttpError(
        413,
        'batch_too_large',
        `at most ${MAX_BATCH} events per request, got ${list.length}`,
      );
    const t = now();
    const batch = Array.isArray(body);
    return list.map((value, i) => {
      try {
        // Only an event with an idempotency key needs the hash of what was sent: such an event
        // without a timestamp is hashed as sent, before one is added, so it is not changed in place.
        const sent = value as Record<string, unknown> | null;
        const keepAsSent = sent?.idempotency_key !== undefined && sent?.timestamp === undefined;
        const n = normalizeEvent(value, t, batch ? i : 'event', !keepAsSent);
        // Serialised (and so checked) here, outside the store's transaction, once: the store only
        // places the id.
        const canonical = canonicalEvent(n.doc);
        const contentHash =
          n.idempotencyKey === undefined
            ? undefined
            : eventHash(keepAsSent ? canonicalize(value) : bodyWithoutId(canonical));
        return { doc: n.doc, tsMs: n.tsMs, idempotencyKey: n.idempotencyKey, contentHash, canonical };
      } catch (err) {
        if (err instanceof EventInvalidError) throw new HttpError(400, 'invalid_event', err.message);
        throw new HttpError(400, 'invalid_event', `event ${i}: ${(err as Error).message}`);
      }
    });
  };

  const appended = async (append: Promise<AppendResult>): Promise<{ ids: number[]; created: number }> => {
    const result = await append;
    if (result.status === 'conflict') {
      throw new HttpError(
        409,
        'idempotency_conflict',
        `idempotency_key "${result.key}" was already used for a different event`,
      );
    }
    m.appended.inc(result.created);
    const head = await store.treeHead();
    m.size.set(head.size);
    if (head.size - Math.max(lastSigned, 0) >= every) void checkpoint().catch(() => {});
    return result;
  };

  /** appendEvents, keeping only whether the body was a batch (see appendEvents). */
  const startAppend = (body: unknown) => ({ batch: Array.isArray(body), append: appendEvents(body) });

  const routes: Record<
    string,
    (req: IncomingMessage, res: ServerResponse, url: URL, arrival: number) => Promise<void>
  > = {
    'GET /health': async (_req, res) => {
      const head = await store.treeHead();
      sendJson(res, 200, {
        status: 'ok',
        service: 'if-witness',
        store: store.kind,
        tree_size: head.size,
        origin,
      });
    },
    'POST /api/log': async (req, res) => {
      await requireRole(req, 'write', 'POST /api/log');
      const { batch, append } = startAppend(await readJson(req, MAX_BODY_BYTES));
      const r = await append;
      sendJson(res, 201, batch ? { ids: r.ids, created: r.created } : { id: r.ids[0], created: r.created });
    },
    'POST /api/query': async (req, res, _url, arrival) => {
      await requireRole(req, 'read', 'POST /api/query');
      const body = await readJson(req, MAX_BODY_BYTES);
      let parsed: ReturnType<typeof parseQuery>;
      try {
        parsed = parseQuery(body, now());
      } catch (err) {
        if (err instanceof QueryError) throw new HttpError(400, 'invalid_query', err.message);
        throw err;
      }
      try {
        const r = await withQuerySlot(arrival + budget, () => store.query(parsed, arrival + budget));
        const next = r.next ? JSON.stringify(encodeCursor(r.next)) : 'null';
        sendJson(
          res,
          200,
          `{"results":[${r.bodies.join(',')}],"count":${r.bodies.length},"next_cursor":${next}}`,
          { 'server-timing': `total;dur=${(monotonicNow() - arrival).toFixed(1)}` },
        );
      } catch (err) {
        if (err instanceof QueryTimeoutError) {
          m.timeouts.inc();
          throw new HttpError(
            503,
            'query_timeout',
            `query took longer than ${budget} ms; narrow time_range or match an indexed field first`,
          );
        }
        throw err;
      }
    },
    'POST /api/admin/cleanup': async (req, res) => {
      await requireRole(req, 'admin', 'POST /api/admin/cleanup');
      const body = (await readJson(req, 64 * 1024)) as { retain_days?: unknown };
      const days = body?.retain_days;
      if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 36_500) {
        throw new HttpError(
          400,
          'invalid_request',
          'retain_days: must be a whole number of days from 1 to 36500',
        );
      }
      if (days < minRetentionDays) {
        await appendEvents({
          event: 'witness_cleanup_refused',
          severity: 'warning',
          action: 'cleanup',
          metadata: { retain_days: days, min_retention_days: minRetentionDays },
        }).catch((err) => log('error', 'could not audit a refused cleanup', { error: String(err) }));
        throw new HttpError(
          403,
          'retention_violation',
          `retain_days ${days} is shorter than this witness's retention (${minRetentionDays} days): events newer than that are never deleted; restart it with --retention-days to change that`,
        );
      }
      // Sign the tree as it stands before anything is pruned: the cut is verifiable later.
      await checkpoint();
      const cut = await store.treeHead();
      const cutoffMs = now() - days * 86_400_000;
      const deleted = await store.prune(cutoffMs);
      const cutoff = new Date(cutoffMs).toISOString();
      await appendEvents({
        event: 'witness_events_pruned',
        action: 'cleanup',
        metadata: { retain_days: days, cutoff, deleted, checkpoint_size: cut.size },
      });
      await checkpoint();
      sendJson(res, 200, {
        deleted,
        retain_days: days,
        min_retention_days: minRetentionDays,
        cutoff,
        checkpoint: { size: cut.size, root: cut.root.toString('base64') },
      });
    },
    'GET /api/checkpoint': async (req, res, url) => {
      await checkpoint();
      const cp = await store.latestCheckpoint();
      if (!cp) throw new HttpError(404, 'no_checkpoint', 'no checkpoint has been signed yet');
      if (
        url.searchParams.get('format') === 'json' ||
        (req.headers.accept ?? '').includes('application/json')
      ) {
        sendJson(res, 200, {
          origin,
          size: cp.size,
          root: cp.root.toString('base64'),
          time: cp.time,
          note: cp.note,
          public_key: toBase64url(deps.signer.publicKey),
        });
      } else {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(cp.note);
      }
    },
    'GET /api/key': async (_req, res) => {
      sendJson(res, 200, { origin, key_name: origin, public_key: toBase64url(deps.signer.publicKey) });
    },
    'GET /api/proof/inclusion': async (_req, res, url) => {
      const id = intParam(url, 'id');
      const size = intParam(url, 'tree_size');
      if (id < 1 || id > size)
        throw new HttpError(400, 'invalid_request', `id must be from 1 to tree_size (${size})`);
      const hashes = await proof(() => store.inclusionProof(id - 1, size));
      const [leaf] = await store.leafHashes(id - 1, id);
      sendJson(res, 200, {
        id,
        leaf_index: id - 1,
        tree_size: size,
        leaf_hash: leaf?.toString('base64'),
        hashes,
      });
    },
    'GET /api/proof/consistency': async (_req, res, url) => {
      const from = intParam(url, 'from');
      const to = intParam(url, 'to');
      if (from > to) throw new HttpError(400, 'invalid_request', 'from must not be larger than to');
      sendJson(res, 200, { from, to, hashes: await proof(() => store.consistencyProof(from, to)) });
    },
    'GET /api/leaves': async (_req, res, url) => {
      const start = intParam(url, 'start');
      const end = intParam(url, 'end');
      if (end < start || end - start > 10_000)
        throw new HttpError(400, 'invalid_request', 'ask for 0-10000 leaves (start ≤ end)');
      const leaves = await store.leafHashes(start, end);
      sendJson(res, 200, { start, end, leaf_hashes: leaves.map((h) => h.toString('base64')) });
    },
    'GET /metrics': async (_req, res) => {
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    },
  };
  routes['POST /api/events'] = routes['POST /api/log']!;

  // Node checks header and request timeouts only every connectionsCheckingInterval (30 s by default).
  const http = createServer({ connectionsCheckingInterval: 1_000 }, async (req, res) => {
    const arrival = monotonicNow();
    const parsed = requestUrl(req.url, 'http://witness');
    const url = parsed ?? new URL('http://witness/');
    const key = `${req.method} ${url.pathname}`;
    const handler = routes[key];
    try {
      if (!parsed) throw badTarget();
      await ready;
      if (!handler) {
        const known = Object.keys(routes).some((r) => r.endsWith(` ${url.pathname}`));
        throw known
          ? new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`)
          : new HttpError(404, 'not_found', `no route ${url.pathname}`);
      }
      await handler(req, res, url, arrival);
    } catch (err) {
      const away = !(err instanceof HttpError) && storeUnavailable(err);
      const e =
        err instanceof HttpError
          ? err
          : away
            ? new HttpError(
                503,
                'store_unavailable',
                `the witness database is unavailable (${(err as Error).message}); retry`,
              )
            : new HttpError(500, 'internal', (err as Error).message);
      if (e.status >= 500) log('error', 'request failed', { route: key, error: e.message });
      if (!res.headersSent)
        sendError(res, e, {
          'server-timing': `total;dur=${(monotonicNow() - arrival).toFixed(1)}`,
          ...(away ? { 'retry-after': '1' } : {}),
        });
      else res.destroy();
    } finally {
      m.requests.inc({ route: handler ? key : 'other', status: String(res.statusCode) });
    }
  });
  // Slow or stuck clients must not hold sockets forever.
  http.headersTimeout = 10_000;
  http.requestTimeout = 30_000;
  http.keepAliveTimeout = 5_000;

  let closing: Promise<void> | undefined;
  let address: AddressInfo | undefined;
  return {
    http,
    origin,
    get url() {
      if (!address) throw new Error('witness server is not listening');
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${host}:${address.port}`;
    },
    checkpoint,
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
          http.off('error', reject);
          address = http.address() as AddressInfo;
          resolve(address);
        });
      });
    },
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        const unaudited = authLimiter.dispose();
        if (unaudited > 0)
          await appendEvents({
            event: 'witness_auth_failures_suppressed',
            severity: 'warning',
            action: 'admin_auth_failure',
            metadata: { suppressed: unaudited },
          }).catch(() => {});
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeIdleConnections();
          setTimeout(() => http.closeAllConnections(), 500).unref();
        });
        await checkpoint().catch((err) => log('error', 'final checkpoint failed', { error: String(err) }));
        await store.close();
      })();
      return closing;
    },
  };
}

function intParam(url: URL, name: string): number {
  const v = url.searchParams.get(name);
  if (v === null || !/^\d{1,15}$/.test(v))
    throw new HttpError(400, 'invalid_request', `${name}: required, a whole number`);
  return Number(v);
}

async function proof(fn: () => Promise<Buffer[]>): Promise<string[]> {
  try {
    return (await fn()).map((h) => h.toString('base64'));
  } catch (err) {
    if (err instanceof RangeError) throw new HttpError(400, 'invalid_request', err.message);
    throw err;
  }
}

/** Checks a checkpoint note served by a witness against its published key. */
export function verifyServedCheckpoint(note: string, origin: string, publicKey: Uint8Array) {
  return openCheckpoint(note, origin, publicKey);
}

/**
 * The database is away — restarting, unreachable, refusing or dropping connections — so the request
 * may simply be retried: 503 with Retry-After, not a 500. PostgreSQL's connection-exception (08…)
 * and operator-intervention (57P0…) classes, socket errors, node-postgres's own connection messages,
 * and a busy SQLite file.
 */
export function storeUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (/^(08|57P0)/.test(code) || code === '53300') return true; // 53300: too many connections
  const away = [
    'ECONNREFUSED',
    'ECONNRESET',
    'ETIMEDOUT',
    'EPIPE',
    'ENOTFOUND',
    'EAI_AGAIN',
    'EHOSTUNREACH',
    'ENETUNREACH',
  ];
  if (away.includes(code) || code === 'SQLITE_BUSY') return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection error|timeout exceeded when trying to connect|not queryable/i.test(
    message,
  );
}
