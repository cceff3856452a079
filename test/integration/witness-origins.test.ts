// Held checkpoints are keyed by the log's origin, like SSH's known_hosts: any number of witnesses can
// be used from one state directory, and a known URL answering under a new key is refused loudly —
// by commands, in signaling's and the agents' logs and /metrics — with its events kept in the spool
// until `ifmesh witness trust URL --yes` accepts the key.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WitnessClient } from '../../src/clients/witness.js';
import {
  CHECKPOINT_FILE,
  observeCheckpoint,
  readHeldCheckpoints,
} from '../../src/clients/witness-checkpoint.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { run, tempDir } from '../helpers/cli.js';
import {
  freePort,
  type Service,
  startService,
  startSignalingProcess,
  startWitnessProcess,
} from '../helpers/processes.js';
import { getJson } from '../helpers/signaling.js';
import { API_KEY, post } from '../helpers/witness.js';

let dir: string;
let cleanup: () => void;
let state: string;
const services: Service[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  state = path.join(dir, 'state');
});
afterEach(async () => {
  for (const s of services.splice(0)) await s.stop();
  cleanup();
});

async function witness(name: string, port?: number): Promise<Service & { db: string }> {
  const db = path.join(dir, name, 'witness.db');
  // A checkpoint signed after every event, so that each delivery moves the held one.
  const args = ['--checkpoint-every', '1', ...(port ? ['--port', String(port)] : [])];
  const svc = await startWitnessProcess(db, args);
  services.push(svc);
  return Object.assign(svc, { db });
}

async function deliver(url: string, producer: string, n: number): Promise<WitnessClient> {
  const c = new WitnessClient({
    url,
    apiKey: API_KEY,
    producer,
    spoolDir: path.join(state, 'witness-spool'),
    state: openStateDir(state),
  });
  for (let i = 0; i < n; i++) c.log({ event: 'origin_probe', metadata: { producer, i } });
  return c;
}

async function verifyDb(db: string) {
  const r = await run(['witness', 'verify', '--db', db, '--state-dir', state, '--json']);
  return { code: r.code, report: JSON.parse(r.stdout) };
}

describe('checkpoints held per origin', () => {
  it('uses two witnesses (other keys, databases, ports) from one state dir; verifies both logs; still catches a truncation of the first', async () => {
    const a = await witness('a');
    const b = await witness('b');
    const ca = await deliver(a.url, 'to-a', 3);
    expect(await ca.flush(20_000)).toBe(true);
    await ca.close();
    const cb = await deliver(b.url, 'to-b', 4);
    expect(await cb.flush(20_000)).toBe(true);
    await cb.close();
    expect(cb.keyChanged).toBeUndefined();

    const held = await readHeldCheckpoints(openStateDir(state));
    expect(Object.keys(held.logs)).toHaveLength(2);
    expect(held.urls[a.url]).toBe(a.ready.origin);
    expect(held.urls[b.url]).toBe(b.ready.origin);
    for (const w of [a, b]) expect(held.logs[String(w.ready.origin)]!.size).toBeGreaterThan(0);
    const stored = await post(`${b.url}/api/query`, { query: { event: 'origin_probe' } });
    expect(stored.json.count).toBe(4);

    await a.stop();
    await b.stop();
    const va = await verifyDb(a.db);
    expect(va.code).toBe(0);
    expect(va.report).toMatchObject({
      ok: true,
      held_checkpoint: { size: held.logs[String(a.ready.origin)]!.size },
    });
    const vb = await verifyDb(b.db);
    expect(vb.code).toBe(0);
    expect(vb.report).toMatchObject({
      ok: true,
      held_checkpoint: { size: held.logs[String(b.ready.origin)]!.size },
    });

    // A real truncation of the first log, every table cut: caught by the checkpoint held for its origin.
    const sql = new Database(a.db);
    sql.prepare('DELETE FROM events WHERE id > 1').run();
    sql.prepare('DELETE FROM nodes WHERE (idx + 1) * (1 << level) > 1').run();
    sql.prepare('DELETE FROM checkpoints WHERE size > 1').run();
    sql.close();
    const cut = await verifyDb(a.db);
    expect(cut.code).toBe(1);
    expect(cut.report.problems.map((p: { kind: string }) => p.kind)).toContain('truncated');
    expect(cut.report.first_bad_seq).toBe(2);
    expect((await verifyDb(b.db)).code).toBe(0);
  });

  it('reads an old single-checkpoint file as a map of one, and rewrites it keyed by origin', async () => {
    const a = await witness('a');
    const c = await deliver(a.url, 'old', 2);
    expect(await c.flush(20_000)).toBe(true);
    await c.close();
    const file = path.join(state, CHECKPOINT_FILE);
    const current = JSON.parse(readFileSync(file, 'utf8'));
    const only = current.logs[current.urls[a.url]];
    writeFileSync(file, JSON.stringify(only)); // the shape ifmesh wrote before checkpoints were keyed
    expect(await readHeldCheckpoints(openStateDir(state))).toEqual(current);
    await post(`${a.url}/api/log`, { event: 'after_migration' });
    expect((await observeCheckpoint({ url: a.url, state: openStateDir(state) })).status).not.toBe('first');
    const rewritten = JSON.parse(readFileSync(file, 'utf8'));
    expect(rewritten.version).toBe(2);
    expect(rewritten.logs[only.origin].size).toBeGreaterThanOrEqual(only.size);
    await a.stop();
    expect((await verifyDb(a.db)).code).toBe(0);
  });
});

describe('a known witness URL under a new key', () => {
  it('is refused loudly by commands, signaling and agents, keeps events in the spool, and `witness trust --yes` lets them through', async () => {
    const port = await freePort();
    const first = await witness('first', port);
    const c = await deliver(first.url, 'before', 2);
    expect(await c.flush(20_000)).toBe(true);
    await c.close();
    await first.stop();
    // Same address, another database and key.
    const second = await witness('second', port);
    expect(second.ready.origin).not.toBe(first.ready.origin);

    const env = {
      IF_WITNESS_ENDPOINT: second.url,
      IF_WITNESS_API_KEY: API_KEY,
      IFMESH_STATE_DIR: state,
    };
    const sig = await startSignalingProcess(['--state-dir', state], env);
    services.push(sig);
    await run(['keys', 'generate', '--agent', 'agent-k', '--out', 'keys'], { cwd: dir });
    const agent = await startService(
      [
        'agent',
        'run',
        '--id',
        'agent-k',
        '--key',
        path.join(dir, 'keys/agent-k.key'),
        '--signaling',
        sig.url,
        '--loopback',
        '--state-dir',
        state,
      ],
      env,
    );
    services.push(agent);

    await vi.waitFor(
      () => {
        expect(sig.stderr()).toContain('"msg":"witness_key_changed"');
        expect(agent.stderr()).toContain('"msg":"witness_key_changed"');
      },
      { timeout: 20_000 },
    );
    expect(sig.stderr()).toContain(`ifmesh witness trust ${second.url}`);
    await vi.waitFor(
      async () => {
        const metrics = (await getJson(`${sig.ready.http_url}/metrics`)).text;
        expect(metrics).toMatch(/ifmesh_witness_key_changed_total\{reporter="signaling"\} 1/);
        expect(metrics).toMatch(/ifmesh_witness_key_changed_total\{reporter="agent"\} 1/);
      },
      { timeout: 20_000 },
    );
    // Nothing reached the new witness; signaling's events wait on disk.
    expect((await post(`${second.url}/api/query`, { query: {} })).json.count).toBe(0);
    const spool = await run(['witness', 'spool', '--json'], { env, cwd: dir });
    const waiting = JSON.parse(spool.stdout).spools.find((s: { producer: string }) =>
      s.producer.startsWith('signaling-'),
    );
    expect(waiting.pending_events).toBeGreaterThan(0);

    // A command that talks to it fails with a clear error naming the way out.
    const verify = await run(['witness', 'verify', '--url', second.url, '--json'], { env, cwd: dir });
    expect(verify.code).toBe(1);
    expect(JSON.parse(verify.stdout).error).toMatchObject({
      code: 'witness_key_changed',
      hint: `if the witness was re-keyed on purpose, run: ifmesh witness trust ${second.url}`,
    });
    const query = await run(['witness', 'query', '--state-dir', state, '--json'], {
      env: { ...env, IFMESH_STATE_DIR: undefined },
      cwd: dir,
    });
    expect(query.code).toBe(1);
    expect(query.stderr).toContain('witness_key_changed');

    // A producer that has exited left its events on disk; replaying them is refused the same way.
    const offline = await deliver(second.url, 'offline', 2);
    expect(await offline.flush(300)).toBe(false);
    await offline.close(100);
    expect(offline.keyChanged).toMatchObject({ url: second.url, presented_origin: second.ready.origin });
    const refused = await run(['witness', 'spool', '--flush', '--json'], { env, cwd: dir });
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({
      key_changed: { url: second.url, held_origin: first.ready.origin },
      spools: expect.arrayContaining([expect.objectContaining({ producer: 'offline', pending_events: 2 })]),
    });

    const shown = await run(['witness', 'trust', second.url, '--json'], { env, cwd: dir });
    expect(shown.code).toBe(1);
    const report = JSON.parse(shown.stdout);
    expect(report).toMatchObject({
      url: second.url,
      changed: true,
      accepted: false,
      held: { origin: first.ready.origin, fingerprint: expect.stringMatching(/^SHA256:/) },
      presented: { origin: second.ready.origin, fingerprint: expect.stringMatching(/^SHA256:/) },
    });
    expect(report.held.fingerprint).not.toBe(report.presented.fingerprint);

    const accepted = await run(['witness', 'trust', second.url, '--yes', '--json'], { env, cwd: dir });
    expect(accepted.code).toBe(0);
    expect(JSON.parse(accepted.stdout)).toMatchObject({ accepted: true });
    // The spooled events now arrive, once each; the first witness's checkpoint is still held.
    await vi.waitFor(
      async () => {
        const got = await post(`${second.url}/api/query`, { query: { event: 'signaling_server_started' } });
        expect(got.json.count).toBe(1);
      },
      { timeout: 30_000, interval: 200 },
    );
    const replayed = await run(['witness', 'spool', '--flush', '--json'], { env, cwd: dir });
    expect(JSON.parse(replayed.stdout).key_changed).toBeNull();
    const offlineEvents = await post(`${second.url}/api/query`, {
      query: { event: 'origin_probe', 'metadata.producer': 'offline' },
    });
    expect(offlineEvents.json.count).toBe(2);
    const held = await readHeldCheckpoints(openStateDir(state));
    expect(held.urls[second.url]).toBe(second.ready.origin);
    expect(held.logs[String(first.ready.origin)]).toBeDefined();
    expect((await run(['witness', 'verify', '--url', second.url, '--json'], { env, cwd: dir })).code).toBe(0);
    expect(existsSync(path.join(state, CHECKPOINT_FILE))).toBe(true);
  }, 90_000);
});
