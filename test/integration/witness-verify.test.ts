import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { observeCheckpoint } from '../../src/clients/witness-checkpoint.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { canonicalize } from '../../src/crypto/jcs.js';
import { leafHash } from '../../src/crypto/merkle.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { run, tempDir } from '../helpers/cli.js';
import { post, startWitness } from '../helpers/witness.js';

let dir: string;
let cleanup: () => void;
let db: string;
let state: string;

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  db = path.join(dir, 'witness.db');
  state = path.join(dir, 'state');
  const w = await startWitness({ checkpointEvery: 5 }, { dbPath: db, keepFiles: true });
  for (let i = 1; i <= 20; i++) {
    expect(
      (
        await post(`${w.url}/api/log`, {
          event: 'connection_state_changed',
          agent_id: 'agent-1',
          metadata: { n: i },
        })
      ).status,
    ).toBe(201);
  }
  await observeCheckpoint({ url: w.url, state: openStateDir(state) });
  await w.stop();
});
afterEach(() => cleanup());

async function verify(): Promise<{
  code: number;
  report: { ok: boolean; first_bad_seq: number | null; problems: { kind: string }[] };
}> {
  const r = await run(['witness', 'verify', '--db', db, '--state-dir', state, '--json']);
  return { code: r.code, report: JSON.parse(r.stdout) };
}

function tamper(fn: (sql: Database.Database) => void): void {
  const sql = new Database(db);
  try {
    fn(sql);
  } finally {
    sql.close();
  }
}

describe('witness verify --db', () => {
  it('passes an untouched log and checks every signed checkpoint', async () => {
    const { code, report } = await verify();
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true, tree_size: 20, events_checked: 20, first_bad_seq: null });
    expect(
      (report as unknown as { checkpoints_verified: number }).checkpoints_verified,
    ).toBeGreaterThanOrEqual(4);
  });

  it('names a modified event', async () => {
    tamper((s) => s.prepare(`UPDATE events SET body = replace(body, '"n":7', '"n":70') WHERE id = 7`).run());
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(7);
    expect(report.problems.map((p) => p.kind)).toContain('modified');
  });

  it('names a deleted event', async () => {
    tamper((s) => s.prepare('DELETE FROM events WHERE id = 9').run());
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(9);
  });

  it('names an inserted event, even one given a well-formed body for its new place', async () => {
    tamper((s) => {
      s.transaction(() => {
        const rows = s.prepare('SELECT id, body FROM events WHERE id >= 5 ORDER BY id DESC').all() as {
          id: number;
          body: string;
        }[];
        for (const r of rows) s.prepare('UPDATE events SET id = ? WHERE id = ?').run(r.id + 1, r.id);
        const forged = canonicalize({
          event: 'connection_state_changed',
          agent_id: 'agent-1',
          id: 5,
          metadata: { n: 4.5 },
          timestamp: new Date().toISOString(),
        });
        s.prepare('INSERT INTO events (id, ts_ms, body) VALUES (5, ?, ?)').run(Date.now(), forged);
      })();
    });
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(5);
  });

  it('names reordered events', async () => {
    tamper((s) => {
      const a = s.prepare('SELECT body FROM events WHERE id = 11').pluck().get();
      const b = s.prepare('SELECT body FROM events WHERE id = 12').pluck().get();
      s.prepare('UPDATE events SET body = ? WHERE id = 11').run(b);
      s.prepare('UPDATE events SET body = ? WHERE id = 12').run(a);
    });
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(11);
  });

  it('catches truncation by the checkpoint held outside the database, even when every table is cut', async () => {
    tamper((s) => {
      s.prepare('DELETE FROM events WHERE id > 15').run();
      s.prepare('DELETE FROM nodes WHERE (idx + 1) * (1 << level) > 15').run();
      s.prepare('DELETE FROM checkpoints WHERE size > 15').run();
    });
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.first_bad_seq).toBe(16);
    expect(report.problems.map((p) => p.kind)).toContain('truncated');
  });

  it('catches a rewritten event whose leaf was rewritten too, by the signed roots', async () => {
    tamper((s) => {
      const body = (s.prepare('SELECT body FROM events WHERE id = 13').pluck().get() as string).replace(
        '"n":13',
        '"n":99',
      );
      s.prepare('UPDATE events SET body = ? WHERE id = 13').run(body);
      s.prepare('UPDATE nodes SET hash = ? WHERE level = 0 AND idx = 12').run(leafHash(Buffer.from(body)));
    });
    const { code, report } = await verify();
    expect(code).toBe(1);
    expect(report.problems.map((p) => p.kind)).toContain('root_mismatch');
    expect(report.first_bad_seq).toBeLessThanOrEqual(13);
  });
});

describe('witness verify --url', () => {
  it('fails against a witness whose history was rewritten under the same key, or that changed its key', async () => {
    const { seed } = generateKeyPair();
    state = path.join(dir, 'fresh-state');
    const a = await startWitness({}, { seed });
    for (let i = 0; i < 5; i++) await post(`${a.url}/api/log`, { event: 'history', n: i });
    const first = await run(['witness', 'verify', '--url', a.url, '--state-dir', state, '--json']);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ ok: true, tree_size: 5 });
    await a.stop();

    const b = await startWitness({}, { seed });
    for (let i = 0; i < 6; i++) await post(`${b.url}/api/log`, { event: 'other_history', n: i });
    const second = await run(['witness', 'verify', '--url', b.url, '--state-dir', state, '--json']);
    expect(second.code).toBe(1);
    expect(JSON.parse(second.stdout).problems[0].detail).toContain('not an extension of the held checkpoint');
    await b.stop();

    // Another key at the same URL: refused loudly, not compared with the other key's log.
    const c = await startWitness({}, { port: Number(new URL(a.url).port) });
    for (let i = 0; i < 7; i++) await post(`${c.url}/api/log`, { event: 'x', n: i });
    const third = await run(['witness', 'verify', '--url', c.url, '--state-dir', state, '--json']);
    expect(third.code).toBe(1);
    expect(JSON.parse(third.stdout).error).toMatchObject({ code: 'witness_key_changed' });
    expect(JSON.parse(third.stdout).error.hint).toContain(`ifmesh witness trust ${c.url}`);
    await c.stop();
  });
});
