// Tampering with the audit trail, 100 random trials of each kind: a real witness writes a log of 60
// events (a signed checkpoint every 5) and an operator holds its last checkpoint outside the
// database; each trial changes a copy of the database behind the witness's back (one random
// event modified, deleted, swapped with another, a forged one inserted, or the tail cut) and runs
// the offline check `ifmesh witness verify --db` runs. Figure: the share detected (must be 100 %);
// for the kinds that touch one place, the check must also name the first changed event.

import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { observeCheckpoint } from '../../src/clients/witness-checkpoint.js';
import { canonicalize } from '../../src/crypto/jcs.js';
import { verifyDb } from '../../src/ops/witness/verify.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { tempDir } from '../helpers/cli.js';
import { post, startWitness } from '../helpers/witness.js';
import { outOf, percent, recordFigure } from './figures.js';

const EVENTS = 60;
const TRIALS = 100;
const { dir, cleanup } = tempDir();
const pristine = path.join(dir, 'witness.db');
const state = path.join(dir, 'state');
afterAll(() => cleanup());

beforeAll(async () => {
  const w = await startWitness({ checkpointEvery: 5 }, { dbPath: pristine, keepFiles: true });
  try {
    for (let i = 1; i <= EVENTS; i++) {
      const r = await post(`${w.url}/api/log`, {
        event: 'connection_state_changed',
        agent_id: `agent-${1 + (i % 4)}`,
        metadata: { n: i },
      });
      expect(r.status).toBe(201);
    }
    await observeCheckpoint({ url: w.url, state: openStateDir(state) });
  } finally {
    await w.stop();
  }
}, 60_000);

/** A small seeded generator, so a failing trial can be replayed from the seed in the message. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n) as number;
  };
}

/** One tampering: changes the database and says which event is the first one it changed. */
type Tamper = (sql: Database.Database, pick: (n: number) => number) => number;

const body = (sql: Database.Database, id: number) =>
  sql.prepare('SELECT body FROM events WHERE id = ?').pluck().get(id) as string;

const TAMPERS: Record<string, Tamper> = {
  // One character of one event's stored body replaced by another.
  modify: (sql, pick) => {
    const id = 1 + pick(EVENTS);
    const b = body(sql, id);
    const at = pick(b.length);
    const alphabet = '0123456789abcdefxyz{}":,';
    let c = alphabet[pick(alphabet.length)]!;
    if (c === b[at]) c = c === 'x' ? 'y' : 'x';
    sql.prepare('UPDATE events SET body = ? WHERE id = ?').run(b.slice(0, at) + c + b.slice(at + 1), id);
    return id;
  },
  delete: (sql, pick) => {
    const id = 1 + pick(EVENTS);
    sql.prepare('DELETE FROM events WHERE id = ?').run(id);
    return id;
  },
  // The bodies of two distinct events exchanged: every row well-formed, the order wrong.
  swap: (sql, pick) => {
    const a = 1 + pick(EVENTS);
    const b = 1 + ((a + pick(EVENTS - 1)) % EVENTS);
    const [ba, bb] = [body(sql, a), body(sql, b)];
    sql.prepare('UPDATE events SET body = ? WHERE id = ?').run(bb, a);
    sql.prepare('UPDATE events SET body = ? WHERE id = ?').run(ba, b);
    return Math.min(a, b);
  },
  // A forged event given a well-formed body for its place; every later event moved up one.
  insert: (sql, pick) => {
    const at = 1 + pick(EVENTS);
    sql.transaction(() => {
      const rows = sql
        .prepare('SELECT id FROM events WHERE id >= ? ORDER BY id DESC')
        .pluck()
        .all(at) as number[];
      for (const id of rows) sql.prepare('UPDATE events SET id = ? WHERE id = ?').run(id + 1, id);
      const forged = canonicalize({
        event: 'connection_state_changed',
        agent_id: 'agent-1',
        id: at,
        metadata: { n: at - 0.5 },
        timestamp: new Date().toISOString(),
      });
      sql.prepare('INSERT INTO events (id, ts_ms, body) VALUES (?, ?, ?)').run(at, Date.now(), forged);
    })();
    return at;
  },
  // The last k events cut, and half the time every table cut to match, so only the checkpoint
  // held outside the database can tell.
  truncate: (sql, pick) => {
    const keep = EVENTS - 1 - pick(EVENTS - 1);
    sql.prepare('DELETE FROM events WHERE id > ?').run(keep);
    if (pick(2) === 0) {
      sql.prepare('DELETE FROM nodes WHERE (idx + 1) * (1 << level) > ?').run(keep);
      sql.prepare('DELETE FROM checkpoints WHERE size > ?').run(keep);
    }
    return keep + 1;
  },
};

describe(`witness tampering, ${TRIALS} random trials each`, () => {
  for (const [kind, tamper] of Object.entries(TAMPERS)) {
    it(`${kind}: detected every time, the first changed event named`, async () => {
      let detected = 0;
      let named = 0;
      const missed: string[] = [];
      for (let trial = 0; trial < TRIALS; trial++) {
        const seed = 1_000 * trial + kind.length;
        const tdir = path.join(dir, `${kind}-${trial}`);
        mkdirSync(tdir);
        const db = path.join(tdir, 'witness.db');
        copyFileSync(pristine, db);
        if (existsSync(`${pristine}-wal`)) copyFileSync(`${pristine}-wal`, `${db}-wal`);
        const sql = new Database(db);
        let first: number;
        try {
          first = tamper(sql, rng(seed));
        } finally {
          sql.close();
        }
        const report = await verifyDb({ dbPath: db, state: openStateDir(state), cwd: dir });
        if (!report.ok) detected += 1;
        else missed.push(`seed ${seed}`);
        if (report.first_bad_seq === first) named += 1;
        else if (!report.ok) missed.push(`seed ${seed}: named ${report.first_bad_seq}, changed ${first}`);
      }
      recordFigure({
        fault: `witness tampering: ${kind}`,
        trials: TRIALS,
        expected: 'detected 100 %, first changed event named',
        observed: `detected ${outOf(detected, TRIALS)}, named ${outOf(named, TRIALS)}`,
        figure: `${percent(detected, TRIALS)} detected`,
        ok: detected === TRIALS && named === TRIALS,
      });
      expect(missed).toEqual([]);
    }, 120_000);
  }
});
