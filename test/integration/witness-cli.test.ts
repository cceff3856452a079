import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WitnessClient } from '../../src/clients/witness.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { run, tempDir } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

let w: RunningWitness;
let dir: string;
let cleanup: () => void;
let env: Record<string, string>;
beforeAll(async () => {
  ({ dir, cleanup } = tempDir());
  w = await startWitness();
  env = {
    IF_WITNESS_ENDPOINT: `${w.url}/api/log`,
    IF_WITNESS_API_KEY: API_KEY,
    IFMESH_STATE_DIR: path.join(dir, 'state'),
  };
  await post(`${w.url}/api/log`, [
    { event: 'connection_state_changed', agent_id: 'agent-1', metadata: { state: 'failed', rtt: 600 } },
    { event: 'connection_state_changed', agent_id: 'agent-2', metadata: { state: 'connected', rtt: 20 } },
    { event: 'signaling_error', agent_id: 'agent-1' },
  ]);
});
afterAll(async () => {
  await w.stop();
  cleanup();
});

describe('ifmesh witness query / tail', () => {
  it('builds the query from shorthand flags (endpoint from IF_WITNESS_ENDPOINT, /api/log stripped)', async () => {
    const r = await run(
      [
        'witness',
        'query',
        '--event',
        'connection_state_changed',
        '--where',
        'metadata.state=failed',
        '--since',
        '1h',
        '--json',
      ],
      { env, cwd: dir },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).results.map((e: { agent_id: string }) => e.agent_id)).toEqual(['agent-1']);
    const n = await run(['witness', 'query', '--where', 'metadata.rtt=600', '--json'], { env, cwd: dir });
    expect(JSON.parse(n.stdout).count).toBe(1);
    const re = await run(['witness', 'query', '--regex', 'event=.*error.*'], { env, cwd: dir });
    expect(re.stdout).toContain('signaling_error');
    expect(re.stdout).toContain('1 event(s)');
    expect(existsSync(path.join(dir, 'state', 'witness-checkpoint.json'))).toBe(true);
  });

  it('takes a full JSON body, and reports the service refusing it with exit 2', async () => {
    const ok = await run(['witness', 'query', '{"query":{"agent_id":"agent-2"}}', '--json'], {
      env,
      cwd: dir,
    });
    expect(JSON.parse(ok.stdout).count).toBe(1);
    const bad = await run(['witness', 'query', '{"query":{"event":{"$nope":1}}}'], { env, cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown operator');
  });

  it('exits 3 when the witness is unreachable', async () => {
    // A port that was free a moment ago and is closed now: nothing answers there.
    const closed = `http://127.0.0.1:${await freePort()}`;
    const r = await run(['witness', 'query', '--witness', closed], { env, cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('unreachable');
  });

  it('tails the newest events as NDJSON', async () => {
    const r = await run(['witness', 'tail', '-n', '2', '--json'], { env, cwd: dir });
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((e) => e.event)).toEqual(['connection_state_changed', 'signaling_error']);
  });
});

describe('ifmesh witness spool', () => {
  it('lists what waits while the witness is down and replays it with --flush', async () => {
    const spoolDir = path.join(dir, 'state', 'witness-spool');
    const down = new WitnessClient({
      url: `http://127.0.0.1:${await freePort()}`,
      apiKey: API_KEY,
      producer: 'cli-test',
      spoolDir,
      retryMinMs: 10,
      timeoutMs: 300,
    });
    for (let i = 0; i < 3; i++) down.log({ event: 'spooled_event', metadata: { i } });
    expect(await down.flush(500)).toBe(false);
    await down.close(100);
    expect(down.stats).toMatchObject({ sent: 0, spooled: 3, rejected: 0 });
    const listed = await run(['witness', 'spool', '--json'], { env, cwd: dir });
    expect(JSON.parse(listed.stdout)).toMatchObject({
      pending_events: 3,
      spools: [{ producer: 'cli-test', pending_events: 3, locked_by: null }],
    });
    const flushed = await run(['witness', 'spool', '--flush', '--json'], { env, cwd: dir });
    expect(flushed.code).toBe(0);
    expect(JSON.parse(flushed.stdout).pending_events).toBe(0);
    const stored = await post(`${w.url}/api/query`, { query: { event: 'spooled_event' } });
    expect(stored.json.results.map((e: { metadata: { i: number } }) => e.metadata.i)).toEqual([0, 1, 2]);
  });

  it('keeps the newest checkpoint it has seen in the state dir', async () => {
    const stateDir = path.join(dir, 'client-state');
    const c = new WitnessClient({
      url: w.url,
      apiKey: API_KEY,
      producer: 'keeper',
      spoolDir: path.join(stateDir, 'witness-spool'),
      state: openStateDir(stateDir),
    });
    c.log({ event: 'keeper_event' });
    expect(await c.flush()).toBe(true);
    await c.close();
    const file = path.join(stateDir, 'witness-checkpoint.json');
    expect(existsSync(file)).toBe(true);
    const file_ = JSON.parse(readFileSync(file, 'utf8'));
    const origin = file_.urls[w.url];
    const held = file_.logs[origin];
    expect(origin).toMatch(/^ifmesh-witness\//);
    expect(held.size).toBeGreaterThan(0);
    expect(held.note.split('\n')[0]).toBe(origin);
  });
});

describe('cleanup', () => {
  it('prunes events older than retain_days, logs itself, and the log still verifies', async () => {
    const own = await startWitness({}, { keepFiles: true });
    try {
      const old = new Date(Date.now() - 40 * 86_400_000).toISOString();
      await post(`${own.url}/api/log`, [
        { event: 'ancient', timestamp: old },
        { event: 'ancient', timestamp: old },
        { event: 'recent' },
      ]);
      const r = await post(`${own.url}/api/admin/cleanup`, { retain_days: 30 });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ deleted: 2, retain_days: 30, checkpoint: { size: 3 } });
      expect((await post(`${own.url}/api/query`, { query: { event: 'ancient' } })).json.count).toBe(0);
      const logged = await post(`${own.url}/api/query`, { query: { event: 'witness_events_pruned' } });
      expect(logged.json.results[0].metadata).toMatchObject({
        retain_days: 30,
        deleted: 2,
        checkpoint_size: 3,
      });
      expect((await post(`${own.url}/api/admin/cleanup`, { retain_days: 0 })).status).toBe(400);
    } finally {
      await own.stop();
    }
    const v = await run([
      'witness',
      'verify',
      '--db',
      own.dbPath,
      '--pubkey',
      Buffer.from(own.publicKey).toString('base64url'),
      '--state-dir',
      path.join(dir, 'nostate'),
      '--json',
    ]);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, tree_size: 4, events_pruned: 2 });
  });
});
