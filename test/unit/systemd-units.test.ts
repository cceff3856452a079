// The units ifmesh writes for recorded launch specs: what they hold, and that systemd's own checker
// (systemd-analyze verify, which needs no running systemd) accepts every one of them.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
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
    expect(a.files.map((f) => f.file)).toEqual([
      'webrtc-signaling-server@.service',
      'webrtc-signaling-server@8443.service.d/ifmesh.conf',
    ]);
    expect(a.unit).toBe('webrtc-signaling-server@8443.service');
    expect(b.unit).toBe('webrtc-signaling-server@8444.service');
    // The same template for both: nothing of one instance's spec is in it.
    const [template, dropin] = [a.files[0]!.content, a.files[1]!.content];
    expect(template).toBe(b.files[0]!.content);
    expect(template).not.toMatch(/^ExecStart=/m);
    expect(b.env_file).toBe(path.join(state, 'systemd/env/webrtc-signaling-server@8444.env'));
    expect(template).toContain(`EnvironmentFile=${state}/systemd/env/webrtc-signaling-server@%i.env`);
    for (const line of [
      'Restart=on-failure',
      'User=ifmesh',
      'Group=ifmesh',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      `ReadWritePaths=${state}`,
      'StandardOutput=journal',
      'WantedBy=multi-user.target',
    ])
      expect(template.split('\n')).toContain(line);
    // The state dir is under /tmp here: PrivateTmp would hide it.
    expect(template).not.toContain('PrivateTmp');
    // Each instance's drop-in: its own command line and working directory, exactly as recorded.
    const lines = dropin.split('\n');
    expect(lines).toContain(`WorkingDirectory=${dir}`);
    expect(lines.filter((l) => l.startsWith('ExecStart='))).toEqual([
      'ExecStart=',
      `ExecStart=${[process.execPath, ...signaling(1, 8443).spec.args].join(' ')}`,
    ]);
  });

  it("an instance runs its own command: a release's binary differs per instance", () => {
    const other = signaling(2, 8444);
    other.spec.command = '/opt/ifmesh/releases/v2/bin/node';
    const a = renderUnit(signaling(1, 8443), settings);
    const b = renderUnit(other, settings);
    expect(a.files[0]!.content).toBe(b.files[0]!.content);
    expect(b.files[1]!.content).toContain('ExecStart=/opt/ifmesh/releases/v2/bin/node ');
    expect(a.files[1]!.content).not.toContain('/opt/ifmesh/releases/v2');
  });

  it('a drop-in reopens /tmp for an instance whose cwd lies there when the template hides it', () => {
    const s = { user: 'ifmesh', stateDir: '/var/lib/ifmesh', envDir: '/var/lib/ifmesh/systemd/env' };
    const r = renderUnit(
      { ...signaling(1, 8443), spec: { ...signaling(1, 8443).spec, cwd: '/tmp/project' } },
      s,
    );
    expect(r.files[0]!.content).toContain('PrivateTmp=yes');
    expect(r.files[1]!.content.split('\n')).toContain('PrivateTmp=no');
    const home = renderUnit(
      { ...signaling(1, 8443), spec: { ...signaling(1, 8443).spec, cwd: '/srv/ifmesh' } },
      s,
    );
    expect(home.files[1]!.content).not.toMatch(/Private|Protect/);
  });

  it('one unit per agent, part of webrtc-mesh.target; arguments quoted and escaped for systemd', () => {
    const u = renderUnit(agent, settings);
    const content = u.files[0]!.content;
    expect(u.files.map((f) => f.file)).toEqual(['webrtc-agent-a1.service']);
    expect(u.unit).toBe('webrtc-agent-a1.service');
    expect(content).toContain('PartOf=webrtc-mesh.target');
    expect(content).toContain('WantedBy=webrtc-mesh.target');
    expect(content).toContain(`"${path.join(dir, 'config/agents/a 1.json')}"`);
    expect(content).toContain('"100%% \\"$$HOME\\""');
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
    const rendered = [
      renderUnit(signaling(1, 8443), settings),
      renderUnit(signaling(2, 8444), settings),
      renderUnit(agent, settings),
    ];
    for (const r of rendered)
      for (const f of r.files) {
        mkdirSync(path.dirname(path.join(units, f.file)), { recursive: true });
        writeFileSync(path.join(units, f.file), f.content);
      }
    writeFileSync(path.join(units, 'webrtc-mesh.target'), renderMeshTarget(settings));
    // The instances (template + drop-in, found beside the template), not the bare template.
    const r = spawnSync(
      'systemd-analyze',
      ['verify', ...[...rendered.map((x) => x.unit), 'webrtc-mesh.target'].map((u) => path.join(units, u))],
      { encoding: 'utf8', cwd: units },
    );
    // Warnings exit 0 too: any output at all is a finding.
    expect(r.stderr + r.stdout).toBe('');
    expect(r.status).toBe(0);
    // The instance's command is its drop-in's: without it, the template alone does not run.
    rmSync(path.join(units, 'webrtc-signaling-server@8444.service.d'), { recursive: true });
    const bare = spawnSync('systemd-analyze', ['verify', path.join(units, rendered[1]!.unit)], {
      encoding: 'utf8',
    });
    expect(bare.stderr).toContain('no ExecStart=');
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
