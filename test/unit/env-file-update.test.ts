// One key of an env file changed in place (failover turn's TURN_SERVERS): the rest of the file kept
// byte for byte, the old one kept as <file>.bak-<time> with its mode, the value reading back as written.
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../src/config/env-file.js';
import { backupStamp, setEnvFileKey } from '../../src/config/env-file-update.js';
import { persistTurnServers, rewriteLaunchTurnServers } from '../../src/ops/failover/turn.js';
import { readProcess, recordProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';

const NOW = Date.UTC(2026, 10, 22, 21, 44, 37, 123);
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function envFile(text: string, mode = 0o600): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ifmesh-env-'));
  dirs.push(dir);
  const file = path.join(dir, 'webrtc-production.env');
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

describe('setEnvFileKey', () => {
  it('replaces the line in place, keeps every other byte, and backs the old file up with its mode', () => {
    const before = [
      '# TURN',
      'export TURN_SERVERS=turn:10.0.0.5:3478,turn:10.0.0.7:3478  # primary first',
      'TURN_USERNAME=user',
      "TURN_PASSWORD='p#ss'",
      '',
    ].join('\n');
    const file = envFile(before);
    const u = setEnvFileKey(file, 'TURN_SERVERS', 'turn:10.0.0.6:3478,turn:10.0.0.7:3478', NOW);
    expect(u).toMatchObject({
      changed: true,
      previous: 'turn:10.0.0.5:3478,turn:10.0.0.7:3478',
      backup: `${file}.bak-20261122T214437Z`,
    });
    expect(backupStamp(NOW)).toBe('20261122T214437Z');
    expect(readFileSync(file, 'utf8')).toBe(
      before.replace(
        'export TURN_SERVERS=turn:10.0.0.5:3478,turn:10.0.0.7:3478  # primary first',
        'export TURN_SERVERS=turn:10.0.0.6:3478,turn:10.0.0.7:3478',
      ),
    );
    expect(readFileSync(u.backup, 'utf8')).toBe(before);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(u.backup).mode & 0o777).toBe(0o600);
    // No temporary file left beside it.
    expect(readdirSync(path.dirname(file)).sort()).toEqual(
      ['webrtc-production.env', 'webrtc-production.env.bak-20261122T214437Z'].sort(),
    );
  });

  it('appends a missing key, keeps CRLF line ends, and quotes a value that needs it', () => {
    const file = envFile('SIGNALING_PORT=8443\r\n');
    setEnvFileKey(file, 'TURN_SERVERS', 'turn:a b', NOW);
    const text = readFileSync(file, 'utf8');
    expect(text).toBe('SIGNALING_PORT=8443\r\nTURN_SERVERS="turn:a b"\r\n');
    expect(parseEnvFile(text, file).entries.get('TURN_SERVERS')?.value).toBe('turn:a b');
  });

  it('writes nothing, and makes no backup, when the file already says exactly that', () => {
    const file = envFile('TURN_SERVERS=turn:10.0.0.6:3478\n');
    const u = setEnvFileKey(file, 'TURN_SERVERS', 'turn:10.0.0.6:3478', NOW);
    expect(u.changed).toBe(false);
    expect(existsSync(u.backup)).toBe(false);
  });
});

describe("failover turn's step 2 (persistTurnServers)", () => {
  it('writes the file and passes when nothing overrides it', () => {
    const file = envFile('TURN_SERVERS=turn:10.0.0.5:3478\n');
    const p = persistTurnServers(file, ['turn:10.0.0.6:3478'], 'file', [], NOW);
    expect(p).toMatchObject({ ok: true, backup: `${file}.bak-20261122T214437Z` });
    expect(p.detail).toBe(
      `TURN_SERVERS=turn:10.0.0.6:3478 written to ${file} (backup ${file}.bak-20261122T214437Z)`,
    );
  });

  it('fails, naming them, when recorded instances carry their own TURN_SERVERS a restart would bring back', () => {
    const file = envFile('TURN_SERVERS=turn:10.0.0.5:3478\n');
    const p = persistTurnServers(
      file,
      ['turn:10.0.0.6:3478'],
      'file',
      [
        { instance: 'signaling-1', turn_servers: 'turn:10.0.0.5:3478' },
        { instance: 'signaling-2', turn_servers: 'turn:10.0.0.5:3478' },
      ],
      NOW,
    );
    expect(p.ok).toBe(false);
    expect(p.detail).toContain('written to');
    expect(p.detail).toContain(
      'but signaling-1, signaling-2 are recorded with TURN_SERVERS in their launch environment (turn:10.0.0.5:3478)',
    );
    // An instance already recorded with the new list is no obstacle.
    expect(
      persistTurnServers(
        file,
        ['turn:10.0.0.6:3478'],
        'file',
        [{ instance: 'signaling-1', turn_servers: 'turn:10.0.0.6:3478' }],
        NOW,
      ).ok,
    ).toBe(true);
  });

  it('says so when there is no env file, or when the environment wins over it', () => {
    expect(persistTurnServers(null, ['turn:10.0.0.6:3478'], 'env', [], NOW)).toMatchObject({
      ok: true,
      backup: null,
      detail: expect.stringMatching(
        /^no env file was loaded .*: TURN_SERVERS=turn:10\.0\.0\.6:3478 is not persisted/,
      ),
    });
    const file = envFile('TURN_SERVERS=turn:10.0.0.5:3478\n');
    expect(persistTurnServers(file, ['turn:10.0.0.6:3478'], 'env', [], NOW).detail).toContain(
      'TURN_SERVERS is also set in the environment, which wins over the file',
    );
  });

  it('fails, keeping the old file, when it cannot be written', () => {
    const p = persistTurnServers('/nonexistent-dir/webrtc.env', ['turn:10.0.0.6:3478'], 'file', [], NOW);
    expect(p).toMatchObject({ ok: false, backup: null });
    expect(p.detail).toMatch(
      /^could not write TURN_SERVERS to \/nonexistent-dir\/webrtc\.env: .*a restart would bring back the failed server$/,
    );
  });
});

describe('launch environments that carry TURN_SERVERS', () => {
  it('take the new list, so a restart from the record does not bring the failed server back', () => {
    const state = mkdtempSync(path.join(tmpdir(), 'ifmesh-state-'));
    dirs.push(state);
    const spec = (turn?: string) => ({
      command: process.execPath,
      args: ['ifmesh.js', 'signaling', 'serve'],
      cwd: state,
      env: { SIGNALING_PORT: '8443', ...(turn ? { TURN_SERVERS: turn } : {}) },
      secret_env: [],
    });
    const rec = (name: string, turn?: string) => ({
      name,
      role: 'signaling' as const,
      owner: 'up',
      pid: 1,
      started_at: new Date(NOW).toISOString(),
      spec: spec(turn),
    });
    recordProcess(openStateDir(state), rec('signaling-1', 'turn:10.0.0.5:3478'));
    recordProcess(openStateDir(state), rec('signaling-2', 'turn:10.0.0.6:3478'));
    const r = rewriteLaunchTurnServers(
      openStateDir(state),
      [
        { instance: 'signaling-1', turn_servers: 'turn:10.0.0.5:3478' },
        { instance: 'signaling-2', turn_servers: 'turn:10.0.0.6:3478' },
      ],
      ['turn:10.0.0.6:3478'],
    );
    expect(r.rewritten).toEqual(['signaling-1']);
    expect(readProcess(openStateDir(state), 'signaling-1')?.spec?.env).toEqual({
      SIGNALING_PORT: '8443',
      TURN_SERVERS: 'turn:10.0.0.6:3478',
    });
    // With the records rewritten, persisting no longer fails on them.
    expect(persistTurnServers(null, ['turn:10.0.0.6:3478'], 'default', r.shadowedBy, NOW).ok).toBe(true);
  });
});
