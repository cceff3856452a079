// Which running signaling instances serve a certificate, read from their recorded launch specs: by
// --tls-cert, by SIGNALING_TLS_CERT in their environment, or (as `deploy` launches them) by the env
// file their environment names in IFMESH_CONFIG, whose relative paths are relative to the file.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { instancesNotServing, instancesServing } from '../../src/ops/certs/instances.js';
import { recordProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { tempDir } from '../helpers/cli.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

describe('instancesServing', () => {
  it('finds an instance whose certificate is named in its env file', () => {
    const state = openStateDir(path.join(dir, 'state'));
    mkdirSync(path.join(dir, 'etc'));
    writeFileSync(
      path.join(dir, 'etc/tls.env'),
      'export SIGNALING_TLS_CERT=../certs/s.crt # the CA-signed one\n',
    );
    writeFileSync(path.join(dir, 'etc/other.env'), 'SIGNALING_TLS_CERT=/elsewhere/x.crt\n');
    const rec = (name: string, env: Record<string, string>, args: string[] = []) =>
      recordProcess(state, {
        name,
        role: 'signaling',
        // A live pid: this test's own (the selection reads the spec, not the process).
        pid: process.pid,
        started_at: new Date(0).toISOString(),
        owner: 'deploy',
        spec: { command: process.execPath, args, cwd: dir, env, secret_env: [] },
      });
    rec('by-env-file', { IFMESH_CONFIG: 'etc/tls.env' });
    rec('by-flag', {}, ['--tls-cert', 'certs/s.crt']);
    rec('by-env', { SIGNALING_TLS_CERT: path.join(dir, 'certs/s.crt') });
    rec('other-file', { IFMESH_CONFIG: path.join(dir, 'etc/other.env') });
    rec('plain', {});
    const cert = path.join(dir, 'certs/s.crt');
    expect(
      instancesServing(state, cert)
        .map((i) => i.name)
        .sort(),
    ).toEqual(['by-env', 'by-env-file', 'by-flag']);
    expect(instancesNotServing(state, cert)).toEqual(['other-file', 'plain']);
  });
});
