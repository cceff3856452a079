// IF.witness on PostgreSQL against IF.witness on SQLite, on the same machine in the same run: ingest
// (single events and batches), migration of an N-event SQLite log, and query latency over that log.
// N is IFMESH_BENCH_PG_EVENTS (default 1,000,000); `IFMESH_BENCH_PG_EVENTS=20000 npm run bench witness-pg`
// checks the bench quickly. Every ratio is PostgreSQL / SQLite (for latency, SQLite / PostgreSQL is
// not used: a ratio above 1 is PostgreSQL slower).
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type Cluster, startCluster } from '../../src/exec/postgres.js';
import { freePort } from '../../src/ops/stack/stack.js';
import { migrateWitness } from '../../src/ops/witness/migrate.js';
import { openPgStore } from '../../src/services/witness/pg-store.js';
import { openSqliteStore } from '../../src/services/witness/sqlite-store.js';
import { percentile, type Row } from './lib.js';
import { buildMillion, ingest, latencies, regexStorm, startWitness, stormRows } from './witness.js';

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

async function createDatabase(cluster: Cluster, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: cluster.url('postgres'), connectionTimeoutMillis: 10_000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return cluster.url(name);
}

export async function benchWitnessPg(): Promise<Row[]> {
  const total = Number(process.env.IFMESH_BENCH_PG_EVENTS ?? 1_000_000);
  if (!Number.isInteger(total) || total < 1000 || total % 1000 !== 0)
    throw new Error('IFMESH_BENCH_PG_EVENTS must be a whole number of thousands');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ifmesh-bench-pg-'));
  chmodSync(dir, 0o755);
  const key = ['--key', path.join(dir, 'witness.key')];
  const cluster = await startCluster({
    dataDir: path.join(dir, 'pgdata'),
    socketDir: path.join(dir, 'pgsock'),
    logFile: path.join(dir, 'pglog', 'postgres.log'),
    port: await freePort(),
  });
  try {
    // Ingest: the same clients against a witness process on each store.
    const rates: Record<string, { single: number; batched: number }> = {};
    for (const [name, db] of [
      ['sqlite', path.join(dir, 'ingest.db')],
      ['postgres', await createDatabase(cluster, 'ingest')],
    ] as const) {
      const w = await startWitness(db, key);
      rates[name] = { single: await ingest(w.url, 1, 32, 3000), batched: await ingest(w.url, 500, 4, 3000) };
      await w.stop();
    }

    // Migration of an N-event SQLite log; its baseline is building that log through the SQLite store.
    const bigDb = path.join(dir, 'big.db');
    const now = Date.now();
    process.stderr.write(`  building a ${fmt(total)}-event SQLite log…\n`);
    let t0 = performance.now();
    await buildMillion(bigDb, now, total);
    const buildRate = (total * 1000) / (performance.now() - t0);
    const url = await createDatabase(cluster, 'migrated');
    process.stderr.write('  migrating it to PostgreSQL…\n');
    t0 = performance.now();
    const m = await migrateWitness({ from: `sqlite:${bigDb}`, to: url, batch: 10_000, dryRun: false });
    const migrateMs = performance.now() - t0;
    const sqliteHead = await (async () => {
      const s = openSqliteStore(bigDb);
      const h = await s.treeHead();
      await s.close();
      return h;
    })();
    const pgStore = await openPgStore(url);
    const pgHead = await pgStore.treeHead();
    await pgStore.close();
    if (!m.ok || pgHead.size !== total || !pgHead.root.equals(sqliteHead.root))
      throw new Error('the migrated log does not have the SQLite log tree head');

    // Query latency over the same N events on each store.
    const eqBody = JSON.stringify({
      query: { event: 'connection_state_changed', agent_id: 'agent-8' },
      time_range: { from: '-1h', to: 'now' },
    });
    const reBody = JSON.stringify({
      query: { event: { regex: '.*error.*' } },
      time_range: { from: '-1h', to: 'now' },
    });
    const lat: Record<string, { eq: number[]; re: number[] }> = {};
    for (const [name, db] of [
      ['sqlite', bigDb],
      ['postgres', url],
    ] as const) {
      const w = await startWitness(db, key);
      await latencies(w.url, eqBody, 20);
      lat[name] = { eq: await latencies(w.url, eqBody, 300), re: await latencies(w.url, reBody, 100) };
      await w.stop();
    }
    // The hostile-regex storm against a PostgreSQL witness: (a+)+$ yields no literal, so every
    // candidate row goes to re2js, as on SQLite; the same bounds hold.
    const storm = await regexStorm(await createDatabase(cluster, 'storm'), key);
    const p = (xs: number[], q: number) => percentile(xs, q).toFixed(2);
    const s = rates.sqlite!;
    const g = rates.postgres!;
    const single = g.single / s.single;
    const batched = g.batched / s.batched;
    const migrateRate = (total * 1000) / migrateMs;
    const eqRatio = percentile(lat.postgres!.eq, 95) / percentile(lat.sqlite!.eq, 95);
    const reRatio = percentile(lat.postgres!.re, 95) / percentile(lat.sqlite!.re, 95);
    const n = fmt(total);
    // PostgreSQL pays a loopback round trip per statement (four or five per append transaction) and
    // a server process of its own; the targets bound that cost relative to SQLite in the same run,
    // not this machine's speed. Measured on the shared 2-core machine, single-event ingest ranged
    // from 0.09× to 0.84× between runs, hence the loose bound.
    return [
      {
        measure: 'ingest, one event per request (32 clients)',
        baseline: `SQLite witness ${fmt(s.single)}/s`,
        ifmesh: `PostgreSQL witness ${fmt(g.single)}/s`,
        ratio: `${single.toFixed(2)}×`,
        target: '≥ 0.05×',
        met: single >= 0.05,
      },
      {
        measure: 'ingest, batches of 500 (4 clients)',
        baseline: `SQLite witness ${fmt(s.batched)}/s`,
        ifmesh: `PostgreSQL witness ${fmt(g.batched)}/s`,
        ratio: `${batched.toFixed(2)}×`,
        target: '≥ 0.1×',
        met: batched >= 0.1,
      },
      {
        measure: `migrate ${n} events SQLite → PostgreSQL (same tree head)`,
        baseline: `building the SQLite log ${fmt(buildRate)}/s`,
        ifmesh: `${(migrateMs / 1000).toFixed(1)} s, ${fmt(migrateRate)} events/s`,
        ratio: `${(migrateRate / buildRate).toFixed(2)}×`,
        target: '≥ 0.5×',
        met: migrateRate / buildRate >= 0.5,
      },
      {
        measure: `query p50/p95, indexed equality + 1 h, ${n} events`,
        baseline: `SQLite ${p(lat.sqlite!.eq, 50)}/${p(lat.sqlite!.eq, 95)} ms`,
        ifmesh: `PostgreSQL ${p(lat.postgres!.eq, 50)}/${p(lat.postgres!.eq, 95)} ms`,
        ratio: `${eqRatio.toFixed(2)}× (p95)`,
        target: 'p95 ≤ 10×',
        met: eqRatio <= 10,
      },
      {
        measure: `query p50/p95, regex \`.*error.*\` over the last hour, ${n} events`,
        baseline: `SQLite ${p(lat.sqlite!.re, 50)}/${p(lat.sqlite!.re, 95)} ms`,
        ifmesh: `PostgreSQL ${p(lat.postgres!.re, 50)}/${p(lat.postgres!.re, 95)} ms`,
        ratio: `${reRatio.toFixed(2)}× (p95)`,
        // The literal every match needs (\`error\`) is checked in SQL (LIKE), so only candidates
        // reach re2js in the witness.
        target: 'p95 ≤ 5×',
        met: reRatio <= 5,
      },
      ...stormRows(storm, ' on PostgreSQL'),
    ];
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
