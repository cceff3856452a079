import path from 'node:path';
import type { Context } from '../../src/cli/context.js';
import { intFlag } from '../../src/cli/options.js';
import { type LoadedConfig, launchEnv, type MeshConfig } from '../../src/config/load.js';
import type { DeployOptions } from '../../src/ops/deploy/deploy.js';
import { resolveSystemdSettings, runsUnderSystemd } from '../../src/ops/fleet/systemd.js';
import type { StateDir } from '../../src/state/state-dir.js';
import type { Progress } from '../../src/ui/progress.js';

export interface DeployFlags {
  deploymentId?: string;
  agentsDir: string;
  release?: string;
  label?: string;
  keepReleases: string;
  basePort?: string;
  nginxPort: string;
  supervisor?: 'ifmesh' | 'systemd' | 'none';
  unitDir?: string;
  serviceUser?: string;
}

interface Resolved {
  loaded: LoadedConfig;
  state: StateDir;
  witness: MeshConfig;
  progress: Progress;
}

/** deploy's options from its flags and needs; the port and count flags validated. */
export function deployOptions(
  flags: DeployFlags,
  instances: number,
  { loaded, state, witness, progress }: Resolved,
  ctx: Context,
): DeployOptions {
  // A fleet already under systemd stays there when deployed again without the flag.
  const supervisor = flags.supervisor ?? (runsUnderSystemd(state) ? 'systemd' : 'ifmesh');
  return {
    state,
    agentsDir: path.resolve(ctx.cwd, flags.agentsDir),
    instances,
    basePort: intFlag(
      flags.basePort ?? String(loaded.config.signalingPort),
      flags.basePort ? '--base-port' : 'SIGNALING_PORT (the first instance)',
      1024,
      65_000,
    ),
    nginxPort: intFlag(flags.nginxPort, '--nginx-port', 1024, 65_000),
    deploymentId: flags.deploymentId,
    release: flags.release,
    label: flags.label,
    keepReleases: intFlag(flags.keepReleases, '--keep-releases', 1, 1000),
    config: witness,
    cwd: ctx.cwd,
    progress,
    launchEnv: launchEnv(ctx.env, loaded),
    configValues: loaded.raw,
    clusterSecret: loaded.raw.SIGNALING_CLUSTER_SECRET || undefined,
    supervise: supervisor !== 'none',
    systemd:
      supervisor === 'systemd'
        ? resolveSystemdSettings(state, { unitDir: flags.unitDir, user: flags.serviceUser, env: ctx.env })
        : undefined,
    production: { envFile: loaded.file, configIssues: loaded.productionIssues },
    caFile: ctx.tls?.caFile,
  };
}
