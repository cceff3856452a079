// `witness migrate --from sqlite:PATH --to postgres://…` against a real PostgreSQL: the copy has the
// same tree head, verifies with the same key and held checkpoint, resumes after an interruption,
// refuses a target holding another log, and a witness serving the copy carries on the same log.
import { cpSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { observeCheckpoint } from '../../src/clients/witness-checkpoint.js';
import { InterruptedError } from '../../src/errors.js';
import { migrateWitness } from '../../src/ops/witness/migrate.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { run, tempDir } from '../helpers/cli.js';
import { postgresForThisFile } from '../helpers/postgres.js';
import { startService, startWitnessProcess } from '../helpers/processes.js';
import { terminal } from '../helpers/tmux.js';
import { API_KEY, post } from '../helpers/witness.js';

const server = postgresForThisFile();
let dir: string;
let cleanup: () => void;
let db: string;
let key: string;
let state: string;
let source: { size: number; root: string };

beforeAll(async () => {
  ({ dir, cleanup } = tempDir());
  db = path.join(dir, 'witness.db');
  key = path.join(dir, 'witness.key');
  state = path.join(dir, 'state');
  const w = await startWitnessProcess(db, ['--checkpoint-every', '500']);
  try {
    const old = new Date(Date.now() - 40 * 86_400_000).toISOString();
    for (let b = 0; b < 25; b++) {
      const events = Array.from({ length: 100 }, (_, i) => ({
        event: 'migrated_probe',
        agent_id: `agent-${i % 3}`,
        idempotency_key: `k-${b}-${i}`,
        metadata: { b, i },
        ...(b < 2 ? { timestamp: old } : {}),
      }));
      expect((await post(`${w.url}/api/log`, events)).status).toBe(201);
    }
    // Old events' content is pruned: the copy must carry pruned rows and the cleanup's own event.
    expect((await post(`${w.url}/api/admin/cleanup`, { retain_days: 30 })).status).toBe(200);
    const { checkpoint } = await observeCheckpoint({ url: w.url, state: openStateDir(state) });
    source = { size: checkpoint.size, root: checkpoint.root.toString('base64') };
  } finally {
    await w.stop();
  }
}, 120_000);
afterAll(async () => {
  cleanup?.();
});

const migrate = (to: string, ...extra: string[]) =>
  run(['witness', 'migrate', '--from', `sqlite:${db}`, '--to', to, '--batch', '700', '--json', ...extra]);

async function verify(url: string) {
  const r = await run(['witness', 'verify', '--db', url, '--state-dir', state, '--pubkey', key, '--json']);
  return { code: r.code, report: JSON.parse(r.stdout) };
}

describe('witness migrate', () => {
  it('copies the log with its checkpoints; the copy verifies with the same tree head', async () => {
    const url = await server().createDatabase();
    const dry = await migrate(url, '--dry-run');
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dry_run: true, to_copy: 2501, target_size: 0, copied: 0 });

    const r = await migrate(url);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: true, copied: 2501, tree_size: 2501, source_size: 2501 });
    expect(report.checkpoints_copied).toBeGreaterThanOrEqual(5);
    expect(report.target_root).toBe(report.source_root);
    expect(source.size).toBe(2501);
    expect(report.target_root).toBe(source.root);

    const v = await verify(url);
    expect(v.code).toBe(0);
    expect(v.report).toMatchObject({ ok: true, tree_size: 2501, events_pruned: 200 });
    expect(v.report.checkpoints_verified).toBeGreaterThanOrEqual(6);

    // Running it again copies nothing and still matches.
    const again = JSON.parse((await migrate(url)).stdout);
    expect(again).toMatchObject({ ok: true, copied: 0, target_size: 2501 });

    // A witness serving the copy (named by WITNESS_DB_URL, here with a password, which trust
    // authentication ignores) continues the same log: same key, held checkpoint still consistent.
    const withPassword = url.replace('postgres://postgres@', 'postgres://postgres:s3cret-pw@');
    const w = await startService(['witness', 'serve', '--port', '0', '--key', key], {
      IF_WITNESS_API_KEY: API_KEY,
      WITNESS_DB_URL: withPassword,
    });
    try {
      expect(String(w.ready.db)).toMatch(/^postgres:\/\/postgres:redacted@127\.0\.0\.1:\d+\//);
      const health = await (await fetch(`${w.url}/health`, { signal: AbortSignal.timeout(5_000) })).json();
      expect(health).toMatchObject({ store: 'postgres', tree_size: 2501 });
      const added = await post(`${w.url}/api/log`, { event: 'after_migration' });
      expect(added.json).toMatchObject({ id: 2502 });
      const same = await post(`${w.url}/api/log`, {
        event: 'migrated_probe',
        idempotency_key: 'k-3-4',
        agent_id: 'agent-1',
        metadata: { b: 3, i: 4 },
      });
      expect(same.json).toMatchObject({ id: 305, created: 0 });
      // On a copy of the held checkpoint: this test's new event must not change what the others hold.
      const own = path.join(dir, 'state-after-migration');
      cpSync(state, own, { recursive: true });
      const online = await run(['witness', 'verify', '--url', w.url, '--state-dir', own, '--json']);
      expect(JSON.parse(online.stdout)).toMatchObject({ ok: true, tree_size: 2502 });
    } finally {
      await w.stop();
    }
    expect(w.stderr()).not.toContain('s3cret-pw');
    const shown = await run(['config', 'show', '--json'], { env: { WITNESS_DB_URL: withPassword } });
    expect(shown.stdout).not.toContain('s3cret-pw');
    expect(JSON.parse(shown.stdout).values.WITNESS_DB_URL).toBe('<redacted>');
  });

  it('shows its progress on a terminal, then the result in its place', async () => {
    const url = await server().createDatabase();
    // The command runs in a real terminal (tmux); the pane is read until it has finished.
    const t = terminal(['witness', 'migrate', '--from', `sqlite:${db}`, '--to', url, '--batch', '100'], {
      cwd: dir,
    });
    try {
      let sawProgress = false;
      await t.until((screen) => {
        if (/(⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏|✓) migrate [\d,]+/.test(screen)) sawProgress = true;
        return screen.includes('(same as the source)');
      }, 'the migration to finish on the terminal');
      expect(await t.exitCode()).toBe(0);
      expect(sawProgress).toBe(true);
      const screen = t.screen();
      expect(screen).toContain('✓ migrated');
      expect(screen).toMatch(/2,?501 event\(s\) copied/);
      expect(screen).not.toMatch(/ migrate [\d,]+/);
    } finally {
      t.kill();
    }
  });

  it('resumes an interrupted migration and ends with the same root', async () => {
    const url = await server().createDatabase();
    const stop = new AbortController();
    await expect(
      migrateWitness({
        from: `sqlite:${db}`,
        to: url,
        batch: 500,
        dryRun: false,
        signal: stop.signal,
        onProgress: (done) => {
          if (done >= 1000) stop.abort();
        },
      }),
    ).rejects.toThrow(InterruptedError);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const partial = Number((await c.query('SELECT size FROM head')).rows[0].size);
    const rows = Number((await c.query('SELECT COUNT(*) AS n FROM events')).rows[0].n);
    await c.end();
    expect(partial).toBe(1000);
    expect(rows).toBe(1000);

    const r = await migrate(url);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: true,
      target_size: 1000,
      copied: 1501,
      target_root: source.root,
    });
    expect((await verify(url)).report).toMatchObject({ ok: true, tree_size: 2501 });
  });

  it('refuses a target that holds another log, and bad arguments, with exit 2', async () => {
    const url = await server().createDatabase();
    const other = await startWitnessProcess(url, ['--key', path.join(dir, 'other.key')]);
    await post(`${other.url}/api/log`, { event: 'another_log' });
    await other.stop();
    const r = await migrate(url);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error.message).toContain('not the first 1 of');

    const missing = await run(['witness', 'migrate', '--from', `sqlite:${dir}/nope.db`, '--to', url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('does not exist');
    const absent = url.replace(/\/[^/]+$/, '/no_such_db');
    const noDb = await run(['witness', 'migrate', '--from', `sqlite:${db}`, '--to', absent]);
    expect(noDb.code).toBe(3);
    expect(noDb.stderr).toContain('createdb');
    const serve = await run(['witness', 'serve', '--port', '0', '--db', absent, '--key', key], {
      env: { IF_WITNESS_API_KEY: API_KEY },
    });
    expect(serve.code).toBe(3);
    expect(serve.stderr).toContain('database "no_such_db" does not exist');
    const notPg = await run(['witness', 'migrate', '--from', `sqlite:${db}`, '--to', 'mysql://x/y']);
    expect(notPg.code).toBe(2);
    expect(notPg.stderr).toContain('postgres://');
  });
});
