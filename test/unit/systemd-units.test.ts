// The units ifmesh writes for recorded launch specs: what they hold, and that systemd's own checker
// (systemd-analyze verify, which needs no running systemd) accepts every one of them.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  renderEnvFile,
  renderMeshTarget,
  renderUnit,
  unitNameOf,
} from '../../src/ops/fleet/systemd-units.js';
import { signalingServeArgs } from '../../src/ops/shared.js';
import type { LaunchSpec } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { BIN, tempDir } from '../helpers/cli.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const state = path.join(dir, 'state');
const settings = { user: 'ifmesh', stateDir: state, envDir: path.join(state, 'systemd/env') };
const spec = (args: string[], env: Record<string, string> = {}): LaunchSpec => ({
  command: process.execPath,
  args,
  cwd: dir,
  env,
  secret_env: [],
});
const signaling = (n: number, port: number) => ({
  name: `deploy-signaling-${n}`,
  role: 'signaling' as const,
  port,
  spec: spec(
    signalingServeArgs(BIN, {
      port,
      instanceId: `deploy-signaling-${n}`,
      state: openStateDir(state),
      host: '127.0.0.1',
    }),
  ),
});
const agent = {
  name: 'deploy-agent-a1',
  role: 'agents' as const,
  // An argument with a space, quotes, % and $: passed through to the process exactly.
  spec: spec([
    BIN,
    'agent',
    'run',
    '--config',
    path.join(dir, 'config/agents/a 1.json'),
    '--signaling',
    'ws://127.0.0.1:1,ws://127.0.0.1:2',
    '100% "$HOME"',
  ]),
};

describe('systemd units from launch specs', () => {
  it('one template for every signaling instance, the port as its instance name', () => {
    const [a, b] = [renderUnit(signaling(1, 8443), settings), renderUnit(signaling(2, 8444), settings)];
    expect(a.file).toBe('webrtc-signaling-server@.service');
    expect(a.unit).toBe('webrtc-signaling-server@8443.service');
    expect(b.unit).toBe('webrtc-signaling-server@8444.service');
    // The same template for both: the port is %i, the instance id comes from each instance's env file.
    expect(a.content).toBe(b.content);
    expect(a.content).toContain(`--port %i --instance-id \${IFMESH_UNIT_INSTANCE_ID}`);
    expect(a.extra_env).toEqual({ IFMESH_UNIT_INSTANCE_ID: 'deploy-signaling-1' });
    expect(b.env_file).toBe(path.join(state, 'systemd/env/webrtc-signaling-server@8444.env'));
    expect(a.content).toContain(`EnvironmentFile=${state}/systemd/env/webrtc-signaling-server@%i.env`);
    for (const line of [
      'Restart=on-failure',
      'User=ifmesh',
      'Group=ifmesh',
      `WorkingDirectory=${dir}`,
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      `ReadWritePaths=${state}`,
      'StandardOutput=journal',
      'WantedBy=multi-user.target',
    ])
      expect(a.content.split('\n')).toContain(line);
    // The state dir is under /tmp here: PrivateTmp would hide it.
    expect(a.content).not.toContain('PrivateTmp');
  });

  it('one unit per agent, part of webrtc-mesh.target; arguments quoted and escaped for systemd', () => {
    const u = renderUnit(agent, settings);
    expect(u.unit).toBe('webrtc-agent-a1.service');
    expect(u.content).toContain('PartOf=webrtc-mesh.target');
    expect(u.content).toContain('WantedBy=webrtc-mesh.target');
    expect(u.content).toContain(`"${path.join(dir, 'config/agents/a 1.json')}"`);
    expect(u.content).toContain('"100%% \\"$$HOME\\""');
    expect(unitNameOf({ name: 'witness', role: 'witness' })).toBe('webrtc-witness.service');
    expect(unitNameOf({ name: 'deploy-redis', role: 'redis' })).toBe('webrtc-deploy-redis.service');
  });

  it('environment files in systemd syntax: every value quoted, escapes kept', () => {
    expect(renderEnvFile({ B: 'two words', A: 'x"y\\z', C: 'a\nb', 'bad key': 'dropped' })).toBe(
      'A="x\\"y\\\\z"\nB="two words"\nC="a\\nb"\n',
    );
  });

  it('systemd-analyze verify accepts every generated unit', () => {
    requireBinary('systemd-analyze', 'systemd');
    const units = path.join(dir, 'units');
    mkdirSync(units, { recursive: true });
    const rendered = [renderUnit(signaling(1, 8443), settings), renderUnit(agent, settings)];
    for (const r of rendered) writeFileSync(path.join(units, r.file), r.content);
    writeFileSync(path.join(units, 'webrtc-mesh.target'), renderMeshTarget(settings));
    const r = spawnSync(
      'systemd-analyze',
      ['verify', ...[...rendered.map((x) => x.unit), 'webrtc-mesh.target'].map((u) => path.join(units, u))],
      { encoding: 'utf8', cwd: units },
    );
    // Warnings exit 0 too: any output at all is a finding.
    expect(r.stderr + r.stdout).toBe('');
    expect(r.status).toBe(0);
    // The checker does catch a broken unit (so the test can fail).
    writeFileSync(
      path.join(units, 'broken.service'),
      '[Service]\nExecStart=relative/path\nRestart=sometimes\n',
    );
    const bad = spawnSync('systemd-analyze', ['verify', path.join(units, 'broken.service')], {
      encoding: 'utf8',
    });
    expect(bad.stderr).toContain('bad unit file setting');
    expect(bad.status).not.toBe(0);
  });
});
