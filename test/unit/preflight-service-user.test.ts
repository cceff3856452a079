// Whether the systemd service user can read a file through every directory above it: POSIX's one
// class (owner, else group, else other) per path, from / down.
import { describe, expect, it } from 'vitest';
import { blockedAt, describeBlock, type PathFacts } from '../../src/ops/preflight/service-user.js';

const dir = (p: string, mode: number, uid = 0, gid = 0): PathFacts => ({
  path: p,
  uid,
  gid,
  mode,
  dir: true,
});
const file = (p: string, mode: number, uid = 0, gid = 0): PathFacts => ({
  path: p,
  uid,
  gid,
  mode,
  dir: false,
});
const ifmesh = { uid: 994, gids: [994] };

describe('blockedAt', () => {
  const root = dir('/', 0o755);
  it('a world-readable file under open directories is readable', () => {
    expect(blockedAt(ifmesh, [root, dir('/srv', 0o755), file('/srv/a.env', 0o644)])).toBeUndefined();
  });
  it('a root-owned 0600 key is not, and the fix is chown to the user', () => {
    const key = file('/srv/keys/a1.key', 0o600);
    const b = blockedAt(ifmesh, [root, dir('/srv', 0o755), dir('/srv/keys', 0o755), key]);
    expect(b).toEqual({ at: key, why: 'read' });
    expect(describeBlock('ifmesh', key.path, b!)).toEqual({
      problem: 'ifmesh cannot read /srv/keys/a1.key (owner 0:0, mode 0600)',
      fix: 'chown ifmesh: /srv/keys/a1.key',
    });
  });
  it('the owner class decides alone: an owner without r is refused even if others may read', () => {
    expect(blockedAt(ifmesh, [root, file('/k', 0o044, 994, 994)])?.why).toBe('read');
    expect(blockedAt(ifmesh, [root, file('/k', 0o400, 994, 0)])).toBeUndefined();
  });
  it('the group class: a group member reads a 0640 file of that group', () => {
    expect(blockedAt({ uid: 994, gids: [994, 50] }, [root, file('/k', 0o640, 0, 50)])).toBeUndefined();
    expect(blockedAt(ifmesh, [root, file('/k', 0o640, 0, 50)])?.why).toBe('read');
  });
  it('a directory it may not enter stops it before the file, and is named with its fix', () => {
    const home = dir('/root', 0o700);
    const b = blockedAt(ifmesh, [root, home, dir('/root/p', 0o755), file('/root/p/a.env', 0o644)]);
    expect(b).toEqual({ at: home, why: 'enter' });
    expect(describeBlock('ifmesh', '/root/p/a.env', b!).fix).toBe('chmod o+x /root (or chown ifmesh: /root)');
  });
  it('root reads everything', () => {
    expect(blockedAt({ uid: 0, gids: [0] }, [dir('/', 0o700), file('/k', 0o000, 5, 5)])).toBeUndefined();
  });
});
