// systemd units for recorded launch specs (pure: no I/O). A process runs under systemd exactly as
// the local supervisor would run it: the same command, arguments, working directory and
// environment, now with Restart=on-failure, a dedicated user, hardening and journald output.
//
// Names follow the runbook: signaling instances are instances of the template
// `webrtc-signaling-server@.service`, one per port (`systemctl restart webrtc-signaling-server@8443`);
// each agent is `webrtc-agent-<id>.service`, all of them part of `webrtc-mesh.target`
// (`systemctl start webrtc-mesh.target` starts the mesh); the witness is `webrtc-witness.service`;
// any other service (Redis, coturn) is `webrtc-<name>.service`.
//
// The template holds what every instance shares; what an instance's launch spec says (its command,
// arguments and working directory) goes in the instance's own drop-in,
// `webrtc-signaling-server@<port>.service.d/ifmesh.conf`. Instances may run different commands (a
// canary instance runs its release's own binary), and systemd takes neither the program from a
// variable nor a template per instance: a drop-in is systemd's own way to give one instance of a
// template its settings, and `systemctl cat webrtc-signaling-server@8443` shows both.
//
// The environment goes in through `EnvironmentFile=` of a file ifmesh renders in systemd's syntax
// (src/ops/fleet/systemd.ts writes it, 0600): the operator's env file is not handed to systemd
// directly, since systemd reads another dialect than the runbook's `source` (no `export`, no
// trailing `# comments`) and would give a service a different value than ifmesh reads.
import path from 'node:path';
import type { LaunchSpec, ProcessRole } from '../../state/processes.js';

export const SIGNALING_TEMPLATE = 'webrtc-signaling-server@.service';
export const MESH_TARGET = 'webrtc-mesh.target';
/** The drop-in of a template instance that carries its launch spec. */
export const INSTANCE_DROPIN = 'ifmesh.conf';

export interface UnitSource {
  name: string;
  role: ProcessRole;
  port?: number | undefined;
  spec: LaunchSpec;
}

export interface UnitSettings {
  /** The dedicated user (and group) the services run as. */
  user: string;
  /** The state directory: the only place the services may write (ReadWritePaths=). */
  stateDir: string;
  /** Where the rendered environment files live (under the state dir). */
  envDir: string;
}

/** A file under the unit directory: a unit, a template, or a template instance's drop-in. */
export interface UnitFile {
  /** Relative to the unit directory: `webrtc-signaling-server@8443.service.d/ifmesh.conf`. */
  file: string;
  content: string;
}

export interface RenderedUnit {
  /** What is written to the unit directory: the unit, or the template and the instance's drop-in. */
  files: UnitFile[];
  /** The unit started, stopped and asked about: `webrtc-signaling-server@8443.service`. */
  unit: string;
  /** The environment file of this unit (the process's whole environment, secret values included). */
  env_file: string;
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9:_.-]/g, '_');

/** The unit a process record runs as. */
export function unitNameOf(rec: { name: string; role: ProcessRole; port?: number | undefined }): string {
  if (rec.role === 'signaling' && rec.port) return `webrtc-signaling-server@${rec.port}.service`;
  if (rec.role === 'agents' && rec.name.startsWith('deploy-agent-'))
    return `webrtc-agent-${safe(rec.name.slice('deploy-agent-'.length))}.service`;
  return `webrtc-${safe(rec.name)}.service`;
}

/** One ExecStart= word: quoted when it must be, `%` and `$` escaped so systemd passes them through. */
export function execWord(arg: string): string {
  const escaped = arg.replaceAll('%', '%%').replaceAll('$', () => '$$');
  if (escaped !== '' && !/[\s"'\\;]/.test(escaped)) return escaped;
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** A path setting (WorkingDirectory=, EnvironmentFile=): `%` escaped, so no specifier expands. */
function pathValue(p: string): string {
  return p.replaceAll('%', '%%');
}

/** One path of a path list (ReadWritePaths=): quoted when it holds a space or a quote. */
function pathWord(p: string): string {
  const v = pathValue(p);
  return /[\s"'\\]/.test(v) ? `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : v;
}

/** An EnvironmentFile= in systemd's syntax: every value double-quoted with its escapes. */
export function renderEnvFile(env: Record<string, string>): string {
  return `${Object.keys(env)
    .sort()
    .filter((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
    .map((k) => `${k}="${env[k]!.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`)
    .join('\n')}\n`;
}

const TMP = ['/tmp', '/var/tmp'];
const HOMES = ['/home', '/root', '/run/user'];
const under = (paths: string[], roots: string[]) =>
  paths.some((p) => roots.some((r) => p === r || p.startsWith(`${r}/`)));

/**
 * Hardening a service keeps: no new privileges, the OS read-only, writes only to the state dir.
 * PrivateTmp and ProtectHome only where no path the service needs lies under /tmp or a home, which
 * they would hide.
 */
function hardening(paths: string[], s: UnitSettings): string[] {
  return [
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ReadWritePaths=${pathWord(s.stateDir)}`,
    ...(under(paths, TMP) ? [] : ['PrivateTmp=yes']),
    ...(under(paths, HOMES) ? [] : ['ProtectHome=yes']),
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
  ];
}

/** In an instance's drop-in: the template's PrivateTmp/ProtectHome undone where its cwd needs it. */
function opened(cwd: string, s: UnitSettings): string[] {
  return [
    ...(under([cwd], TMP) && !under([s.stateDir], TMP) ? ['PrivateTmp=no'] : []),
    ...(under([cwd], HOMES) && !under([s.stateDir], HOMES) ? ['ProtectHome=no'] : []),
  ];
}

function describe(src: UnitSource, template: boolean): string {
  if (template) return 'WebRTC signaling server on port %i (ifmesh)';
  if (src.role === 'agents') return `WebRTC mesh agent ${src.name} (ifmesh)`;
  if (src.role === 'witness') return 'IF.witness audit service (ifmesh)';
  return `${src.name} for the WebRTC mesh (ifmesh)`;
}

export function marker(s: UnitSettings): string {
  return `# Generated by ifmesh for the state dir ${s.stateDir}; \`ifmesh systemd install\` rewrites it.`;
}

/** The unit (or the template and the instance's drop-in) that runs `src`'s launch spec. */
export function renderUnit(src: UnitSource, s: UnitSettings): RenderedUnit {
  const unit = unitNameOf(src);
  const template = unit.includes('@');
  const exec = `ExecStart=${[src.spec.command, ...src.spec.args].map(execWord).join(' ')}`;
  const workdir = `WorkingDirectory=${pathValue(src.spec.cwd)}`;
  const envFile = path.join(s.envDir, `${unit.replace(/\.service$/, '')}.env`);
  // A template names each instance's file through %i.
  const envSetting = template ? `${pathValue(s.envDir)}/webrtc-signaling-server@%i.env` : pathValue(envFile);
  const agent = src.role === 'agents';
  const content = [
    marker(s),
    ...(template
      ? [
          "# ExecStart= and WorkingDirectory= are each instance's own (its launch spec, its release's",
          `# command), in webrtc-signaling-server@PORT.service.d/${INSTANCE_DROPIN} beside this file.`,
        ]
      : []),
    '[Unit]',
    `Description=${describe(src, template)}`,
    'After=network-online.target',
    'Wants=network-online.target',
    ...(agent ? [`PartOf=${MESH_TARGET}`] : []),
    // Keeps restarting: a crash loop shows in `systemctl status`, never a unit given up for good.
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=simple',
    `User=${s.user}`,
    `Group=${s.user}`,
    ...(template ? [] : [workdir]),
    `EnvironmentFile=${envSetting}`,
    ...(template ? [] : [exec]),
    'Restart=on-failure',
    'RestartSec=1',
    'TimeoutStopSec=10',
    'StandardOutput=journal',
    'StandardError=journal',
    `SyslogIdentifier=${template ? 'webrtc-signaling-server-%i' : unit.replace(/\.service$/, '')}`,
    ...hardening(template ? [s.stateDir] : [src.spec.cwd, s.stateDir], s),
    '',
    '[Install]',
    `WantedBy=${agent ? MESH_TARGET : 'multi-user.target'}`,
    '',
  ].join('\n');
  if (!template) return { files: [{ file: unit, content }], unit, env_file: envFile };
  const dropin = [
    marker(s),
    `# ${src.name}: its launch spec, as ifmesh recorded it.`,
    '[Service]',
    workdir,
    // An empty ExecStart= first: a drop-in's ExecStart= adds to a list unless the list is reset.
    'ExecStart=',
    exec,
    // The template hides /tmp and the homes where the state dir allows; this instance's working
    // directory may lie there.
    ...opened(src.spec.cwd, s),
    '',
  ].join('\n');
  return {
    files: [
      { file: SIGNALING_TEMPLATE, content },
      { file: `${unit}.d/${INSTANCE_DROPIN}`, content: dropin },
    ],
    unit,
    env_file: envFile,
  };
}

/** The target every agent unit is part of: `systemctl start|stop webrtc-mesh.target`. */
export function renderMeshTarget(s: UnitSettings): string {
  return [
    marker(s),
    '[Unit]',
    'Description=WebRTC agent mesh: every agent of the state dir (ifmesh)',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
