// A certificate rotation whose first restarted instance does not come back (it was started with a
// copy of the old key, which does not match the new certificate): the rotation stops there, the
// other instance is left running with its old pid, and the exit is 1 naming the broken instance.
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../src/ops/fleet/supervisor.js';
import { signalingServeArgs } from '../../src/ops/shared.js';
import { freePort } from '../../src/ops/stack/stack.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { BIN, run, tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { makeCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const insecure = new Agent({ connect: { rejectUnauthorized: false } });
const { dir, cleanup } = tempDir();
const sup = new Supervisor(openStateDir(dir), { clock: systemClock, owner: 'up' });
let files: { cert: string; key: string };
const pids: Record<string, number> = {};

async function healthy(port: number): Promise<boolean> {
  try {
    const r = await request(`https://127.0.0.1:${port}/health`, {
      dispatcher: insecure,
      headersTimeout: 1_000,
    });
    await r.body.text();
    return r.statusCode === 200;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  files = makeCert(dir, 'server', 2);
  // sig-1 reads a copy of the key: after the rotation it holds the new certificate with the old key.
  const staleKey = path.join(dir, 'stale.key');
  copyFileSync(files.key, staleKey);
  for (const [name, key] of [
    ['sig-1', staleKey],
    ['sig-2', files.key],
  ] as const) {
    const port = await freePort();
    pids[name] = sup.start({
      name,
      role: 'signaling',
      port,
      url: `wss://127.0.0.1:${port}`,
      command: process.execPath,
      args: [
        ...signalingServeArgs(BIN, { port, instanceId: name, state: openStateDir(dir) }),
        '--tls-cert',
        files.cert,
        '--tls-key',
        key,
      ],
      cwd: dir,
    });
    trackPid(pids[name]);
    await waitFor(() => healthy(port), `${name} healthy`, { timeoutMs: 20_000 });
  }
});

afterAll(async () => {
  for (const rec of listProcesses(openStateDir(dir))) await sup.stop(rec.name, 3_000);
  await insecure.close();
  cleanup();
});

describe('certs rotate when a restarted instance stays down', () => {
  it('stops after it, leaves the next instance running, exit 1 naming it', async () => {
    const r = await run(
      [
        'certs',
        'rotate',
        '--cert',
        files.cert,
        '--key',
        files.key,
        '--self-signed-dev',
        '--state-dir',
        dir,
        '--json',
      ],
      { cwd: dir, env: {} },
    );
    for (const p of listProcesses(openStateDir(dir))) trackPid(p.pid);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.renewed).toBe(true);
    expect(doc.restarts).toHaveLength(1);
    expect(doc.restarts[0]).toMatchObject({ name: 'sig-1', healthy: false });
    expect(doc.problems.join('\n')).toContain('sig-1 is not healthy after its restart');
    const sig2 = listProcesses(openStateDir(dir)).find((p) => p.name === 'sig-2')!;
    expect(sig2.pid).toBe(pids['sig-2']);
    expect(await healthy(sig2.port!)).toBe(true);
  });
});
