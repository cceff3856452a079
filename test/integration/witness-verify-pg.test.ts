// `witness verify --db postgres://…` names tampering done directly in PostgreSQL exactly as it does
// on SQLite (witness-verify.test.ts): the same log, the same edits, the same findings.
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { observeCheckpoint } from '../../src/clients/witness-checkpoint.js';
import { createSigner, generateKeyPair } from '../../src/crypto/ed25519.js';
import { canonicalize } from '../../src/crypto/jcs.js';
import { leafHash } from '../../src/crypto/merkle.js';
import { openPgStore } from '../../src/services/witness/pg-store.js';
import { createWitnessServer } from '../../src/services/witness/server.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { run, tempDir } from '../helpers/cli.js';
import { postgresForThisFile } from '../helpers/postgres.js';
import { API_KEY, post } from '../helpers/witness.js';

const server = postgresForThisFile();

let url: string;
let state: string;
let cleanup: () => void;

beforeEach(async () => {
  const t = tempDir();
  cleanup = t.cleanup;
  state = path.join(t.dir, 'state');
  url = await server().createDatabase();
  const w = createWitnessServer({
    store: await openPgStore(url),
    signer: createSigner(generateKeyPair().seed),
    apiKey: API_KEY,
    checkpointEvery: 5,
    checkpointIntervalMs: 60_000,
  });
  await w.listen(0);
  try {
    for (let i = 1; i <= 20; i++) {
      const r = await post(`${w.url}/api/log`, {
        event: 'connection_state_changed',
        agent_id: 'agent-1',
        metadata: { n: i },
      });
      expect(r.status).toBe(201);
    }
    await observeCheckpoint({ url: w.url, state: openStateDir(state) });
  } finally {
    await w.close();
  }
});
afterEach(() => cleanup());

async function verify(): Promise<{
  code: number;
  report: { ok: boolean; tree_size: number; first_bad_seq: number | null; problems: { kind: string }[] };
}> {
  const r = await run(['witness', 'verify', '--db', url, '--state-dir', state, '--json']);
  return { code: r.code, report: JSON.parse(r.stdout) };
}

async function tamper(fn: (sql: pg.Client) => Promise<unknown>): Promise<void> {
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  try {
    await sql.query('BEGIN');
    await fn(sql);
    await sql.query('COMMIT');
  } finally {
    await sql.end();
  }
}

const one = async (sql: pg.Client, text: string, params: unknown[] = []) =>
  (await sql.query(text, params)).rows[0];

describe('witness verify --db postgres://', () => {
  it('passes an untouched log and checks every signed checkpoint', async () => {
    const { code, report } = await verify();
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true, tree_size: 20, events_checked: 20, first_bad_seq: null });
    expect(
      (report as unknown as { checkpoints_verified: number }).checkpoints_verified,
    ).toBeGreaterThanOrEqual(4);
  });

  it('names a modified event', async () => {
    await tamper((s) => s.query(`UPDATE events SET body = replace(body, '"n":7', '"n":70') WHERE id = 7`));
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(7);
    expect(report.problems.map((p) => p.kind)).toContain('modified');
  });

  it('names a deleted event', async () => {
    await tamper((s) => s.query('DELETE FROM events WHERE id = 9'));
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(9);
    expect(report.problems.map((p) => p.kind)).toContain('missing');
  });

  it('names an inserted event, even one given a well-formed body for its new place', async () => {
    await tamper(async (s) => {
      await s.query('UPDATE events SET id = -id WHERE id >= 5');
      await s.query('UPDATE events SET id = -id + 1 WHERE id < 0');
      const forged = canonicalize({
        event: 'connection_state_changed',
        agent_id: 'agent-1',
        id: 5,
        metadata: { n: 4.5 },
        timestamp: new Date().toISOString(),
      });
      await s.query('INSERT INTO events (id, ts_ms, body) VALUES (5, $1, $2)', [Date.now(), forged]);
    });
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(5);
  });

  it('names swapped (reordered) events', async () => {
    await tamper(async (s) => {
      const a = (await one(s, 'SELECT body FROM events WHERE id = 11')).body;
      const b = (await one(s, 'SELECT body FROM events WHERE id = 12')).body;
      await s.query('UPDATE events SET body = $1 WHERE id = 11', [b]);
      await s.query('UPDATE events SET body = $1 WHERE id = 12', [a]);
    });
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(11);
    expect(report.problems.map((p) => p.kind)).toContain('moved');
  });

  it('catches truncation by the checkpoint held outside the database, even when every table is cut', async () => {
    await tamper(async (s) => {
      await s.query('DELETE FROM events WHERE id > 15');
      await s.query('DELETE FROM nodes WHERE (idx + 1) * (1::bigint << level) > 15');
      await s.query('DELETE FROM checkpoints WHERE size > 15');
      await s.query('UPDATE head SET size = 15');
    });
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(16);
    expect(report.problems.map((p) => p.kind)).toContain('truncated');
  });

  it('catches a TRUNCATE of every table by the held checkpoint', async () => {
    await tamper((s) => s.query('TRUNCATE events, nodes, checkpoints'));
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(1);
    expect(report.problems.map((p) => p.kind)).toContain('truncated');
  });

  it('catches a rewritten event whose leaf was rewritten too, by the signed roots', async () => {
    await tamper(async (s) => {
      const body = ((await one(s, 'SELECT body FROM events WHERE id = 13')).body as string).replace(
        '"n":13',
        '"n":99',
      );
      await s.query('UPDATE events SET body = $1 WHERE id = 13', [body]);
      await s.query('UPDATE nodes SET hash = $1 WHERE level = 0 AND idx = 12', [leafHash(Buffer.from(body))]);
    });
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.problems.map((p) => p.kind)).toContain('root_mismatch');
    expect(report.first_bad_seq).toBeLessThanOrEqual(13);
  });
});
