// preflight's service-user line on this host's real user database and real files: `nobody` cannot
// read a project's 0600 agent keys until they are its own; a user that does not exist is named.
import { chmodSync, chownSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SystemdRunner } from '../../src/exec/systemctl.js';
import { ancestry, checkServiceUser, filesUnitsRead } from '../../src/ops/preflight/service-user.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { tempDir } from '../helpers/cli.js';
import { writeAgentConfigs } from '../helpers/deploy.js';

const { dir, cleanup } = tempDir();
let restore = () => {};
afterAll(() => {
  restore();
  cleanup();
});
const runner = new SystemdRunner([]);
const nobody = () => Number(runner.must('id', ['-u', 'nobody']).trim());

describe('preflight: the systemd service user can read what the units read', () => {
  it('names each unreadable key with its chown fix, and passes once they are the user’s', async () => {
    if (process.getuid?.() !== 0)
      throw new Error('this test chowns files: run the suite as root, as CI does');
    await writeAgentConfigs(dir, ['pf-a1', 'pf-a2']);
    // The run's temp root is 0700: first what nobody meets there, then a way in for this test only.
    const closed = ancestry(dir).filter((d) => (statSync(d).mode & 0o001) === 0);
    expect(closed.length).toBeGreaterThan(0);
    const blocked = await checkServiceUser(runner, 'nobody', [path.join(dir, 'config/agents/pf-a1.json')]);
    expect(blocked.detail).toContain(`nobody cannot enter ${closed[0]}`);
    expect(blocked.hint).toContain(`chmod o+x ${closed[0]}`);
    const modes = closed.map((d) => [d, statSync(d).mode & 0o7777] as const);
    for (const [d, m] of modes) chmodSync(d, m | 0o001);
    restore = () => {
      for (const [d, m] of modes) chmodSync(d, m);
    };
    const files = await filesUnitsRead({
      cwd: dir,
      state: openStateDir(path.join(dir, 'state')),
      envFile: undefined,
      tls: [],
    });
    expect(files).toEqual([
      path.join(dir, 'config/agents/pf-a1.json'),
      path.join(dir, 'config/agents/pf-a2.json'),
      path.join(dir, 'keys/pf-a1.key'),
      path.join(dir, 'keys/pf-a2.key'),
    ]);
    // keys/ is 0700 (ifmesh keys generate): named once for both keys.
    const keys = path.join(dir, 'keys');
    const before = await checkServiceUser(runner, 'nobody', files);
    expect(before.status).toBe('fail');
    expect(before.detail).toBe(
      `nobody cannot enter ${keys} on the way to ${path.join(keys, 'pf-a1.key')} (mode 0700)`,
    );
    expect(before.hint).toBe(`chmod o+x ${keys} (or chown nobody: ${keys})`);
    chownSync(keys, nobody(), 0);
    // Then the 0600 keys themselves, each named with its fix.
    const inside = await checkServiceUser(runner, 'nobody', files);
    expect(inside.detail).toContain(
      `nobody cannot read ${path.join(keys, 'pf-a1.key')} (owner 0:0, mode 0600)`,
    );
    expect(inside.hint).toBe(
      `chown nobody: ${path.join(keys, 'pf-a1.key')}; chown nobody: ${path.join(keys, 'pf-a2.key')}`,
    );
    for (const f of readdirSync(keys)) chownSync(path.join(keys, f), nobody(), 0);
    const after = await checkServiceUser(runner, 'nobody', files);
    expect(after).toMatchObject({ status: 'ok' });
    expect(after.detail).toContain('can read the 4 files');
  });

  it('a service user that does not exist is a failure with the command that creates it', async () => {
    const r = await checkServiceUser(runner, 'ifmesh-no-such-user', []);
    expect(r.status).toBe('fail');
    expect(r.detail).toBe('service user ifmesh-no-such-user does not exist');
    expect(r.hint).toContain("systemd-sysusers --inline 'u ifmesh-no-such-user");
  });
});
