// IF.witness roles, against real `ifmesh witness serve` and `ifmesh signaling serve` processes: the
// write key writes, the admin key (IF_WITNESS_ADMIN_KEY) administers, the read token
// (WITNESS_QUERY_TOKEN) reads; cleanup never deletes events newer than the retention the witness was
// started with; and a flood of unauthenticated admin calls is answered 401 and counted every time
// but writes only a handful of audit entries.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/cli.js';
import { until } from '../helpers/cluster.js';
import { type Service, startSignalingProcess, startWitnessProcess } from '../helpers/processes.js';
import { ADMIN } from '../helpers/signaling.js';
import { post } from '../helpers/witness.js';

const WRITE = 'roles-write-key';
const ADMIN_KEY = 'roles-admin-key';
const READ = 'roles-read-token';
let dir: string;
let w: Service;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'ifmesh-roles-'));
  w = await startWitnessProcess(path.join(dir, 'witness.db'), ['--retention-days', '30'], {
    IF_WITNESS_API_KEY: WRITE,
    IF_WITNESS_ADMIN_KEY: ADMIN_KEY,
    WITNESS_QUERY_TOKEN: READ,
  });
});
afterAll(async () => {
  await w?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const days = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
const count = async (event: string, extra: Record<string, unknown> = {}) =>
  (await post(`${w.url}/api/query`, { query: { event, ...extra }, limit: 10_000 }, READ)).json
    .count as number;
// A pooled keep-alive socket may be closing just as it is reused after a flood: asked again then.
const metric = (url: string, name: string) =>
  until(`${name} from ${url}`, async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    return m ? { n: Number(m[1]) } : undefined;
  }).then((v) => v.n);

describe('witness roles', () => {
  it('lets each key do its own part only', async () => {
    expect((await post(`${w.url}/api/log`, { event: 'by_writer' }, WRITE)).status).toBe(201);
    expect((await post(`${w.url}/api/log`, { event: 'by_admin' }, ADMIN_KEY)).status).toBe(201);
    expect((await post(`${w.url}/api/log`, { event: 'by_reader' }, READ)).status).toBe(401);
    expect((await post(`${w.url}/api/log`, { event: 'by_nobody' }, null)).status).toBe(401);

    const q = { query: { event: 'by_writer' } };
    expect((await post(`${w.url}/api/query`, q, null)).status).toBe(401);
    // Agents hold the write key: it does not read the audit log back.
    expect((await post(`${w.url}/api/query`, q, WRITE)).status).toBe(401);
    expect((await post(`${w.url}/api/query`, q, READ)).json.count).toBe(1);
    expect((await post(`${w.url}/api/query`, q, ADMIN_KEY)).json.count).toBe(1);

    // Agents hold the write key: it deletes nothing.
    for (const key of [WRITE, READ, null]) {
      const r = await post(`${w.url}/api/admin/cleanup`, { retain_days: 30 }, key);
      expect(r.status).toBe(401);
      expect(r.json.error.message).toContain('needs the admin key');
    }
    expect((await post(`${w.url}/api/admin/cleanup`, { retain_days: 30 }, ADMIN_KEY)).status).toBe(200);
  });

  it('never deletes events newer than the retention it was started with, whatever the admin asks', async () => {
    const events = [
      { event: 'retention_probe', tag: 'backdated-2d', timestamp: days(2) },
      { event: 'retention_probe', tag: 'backdated-29d', timestamp: days(29) },
      { event: 'retention_probe', tag: 'old-40d', timestamp: days(40) },
    ];
    expect((await post(`${w.url}/api/log`, events, WRITE)).status).toBe(201);
    for (const retain of [1, 7, 29]) {
      const r = await post(`${w.url}/api/admin/cleanup`, { retain_days: retain }, ADMIN_KEY);
      expect(r.status).toBe(403);
      expect(r.json.error.code).toBe('retention_violation');
    }
    // Nothing went, and each refusal is on record.
    expect(await count('retention_probe')).toBe(3);
    expect(await count('witness_cleanup_refused')).toBe(3);
    const ok = await post(`${w.url}/api/admin/cleanup`, { retain_days: 30 }, ADMIN_KEY);
    expect(ok.json).toMatchObject({ deleted: 1, retain_days: 30, min_retention_days: 30 });
    const left = (
      await post(`${w.url}/api/query`, { query: { event: 'retention_probe' } }, READ)
    ).json.results.map((e: { tag: string }) => e.tag);
    expect(left.sort()).toEqual(['backdated-29d', 'backdated-2d']);
  });

  it('refuses to start with the admin key equal to the write key', async () => {
    const r = await spawnCli(['witness', 'serve', '--port', '0', '--db', path.join(dir, 'same.db')], {
      env: { IF_WITNESS_API_KEY: 'same-key', IF_WITNESS_ADMIN_KEY: 'same-key' },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('IF_WITNESS_ADMIN_KEY is the same as IF_WITNESS_API_KEY');
  });
});

describe('unauthenticated admin calls', () => {
  it('on the witness: all 500 answered 401 and counted, a handful audited, the rest counted into them', async () => {
    const before = await count('witness_auth_failure');
    const unaudited0 = await metric(w.url, 'witness_auth_failures_unaudited_total');
    const refused0 = await metric(w.url, 'witness_unauthorized_attempts_total');
    const answers = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        post(`${w.url}/api/admin/cleanup`, { retain_days: 30 }, i % 2 ? 'guess' : null).then((r) => r.status),
      ),
    );
    expect(new Set(answers)).toEqual(new Set([401]));
    expect((await metric(w.url, 'witness_unauthorized_attempts_total')) - refused0).toBe(500);
    const audited = (await count('witness_auth_failure')) - before;
    const unaudited = (await metric(w.url, 'witness_auth_failures_unaudited_total')) - unaudited0;
    expect(audited).toBeGreaterThan(0);
    expect(audited).toBeLessThanOrEqual(10);
    expect(audited + unaudited).toBe(500);
  });

  it('on a signaling instance: all 500 answered 401 and counted, a handful written to the witness', async () => {
    const state = path.join(dir, 'sig-state');
    const sig = await startSignalingProcess(['--instance-id', 'roles-1', '--state-dir', state], {
      IF_WITNESS_ENDPOINT: w.url,
      IF_WITNESS_API_KEY: WRITE,
      SIGNALING_ADMIN_TOKEN: ADMIN,
    });
    const http = String(sig.ready.http_url);
    try {
      const answers = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          fetch(`${http}/admin/rotate-keys`, {
            method: 'POST',
            headers: i % 2 ? { authorization: 'Bearer guess' } : {},
            body: '{}',
          }).then(async (r) => {
            await r.text();
            return r.status;
          }),
        ),
      );
      expect(new Set(answers)).toEqual(new Set([401]));
      expect(await metric(http, 'webrtc_unauthorized_attempts_total')).toBe(500);
      const unaudited = await metric(http, 'webrtc_unauthorized_unaudited_total');
      // Stopping the instance flushes what its witness client holds.
      expect(await sig.stop()).toBe(0);
      const audited = await count('signaling_auth_failure', { 'metadata.instance_id': 'roles-1' });
      expect(audited).toBeGreaterThan(0);
      expect(audited).toBeLessThanOrEqual(10);
      expect(audited + unaudited).toBe(500);
    } finally {
      await sig.stop();
    }
  });
});
