import path from 'node:path';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type ConfigFlags, intFlag, shared, withConfigOptions, withJson } from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { launchEnv } from '../src/config/load.js';
import { deploy } from '../src/ops/deploy/deploy.js';
import { resolveSystemdSettings, runsUnderSystemd } from '../src/ops/fleet/systemd.js';
import { resolveWitness } from '../src/ops/shared.js';
import { resolveState } from '../src/state/state-dir.js';
import { createProgress } from '../src/ui/progress.js';

interface Flags extends ConfigFlags {
  instances: string;
  deploymentId?: string;
  agentsDir: string;
  release?: string;
  label?: string;
  keepReleases: string;
  dryRun?: boolean;
  stateDir?: string;
  witness?: string;
  basePort?: string;
  nginxPort: string;
  json?: boolean;
  supervisor?: 'ifmesh' | 'systemd' | 'none';
  unitDir?: string;
  serviceUser?: string;
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(withConfigOptions(cmd))
    .option('--instances <n>', 'signaling instances, on consecutive ports from --base-port', '2')
    .option('--deployment-id <id>', 'names this deployment in events and the release record')
    .option('--agents-dir <dir>', 'agent configs to validate and start', 'config/agents')
    .option(
      '--release <source>',
      "the code to deploy, installed once into <state>/releases/<id>/: a tarball, a directory, a git ref of the checkout or an npm spec (default: the running ifmesh's own)",
    )
    .option('--label <name>', 'name of the release in `releases` and `rollback NAME` (default: its version)')
    .option('--keep-releases <n>', 'release records, and their installed code, kept for rollback', '10')
    .option(
      '--base-port <n>',
      "port of the first signaling instance (default: the env file's SIGNALING_PORT, 8443)",
    )
    .option(
      '--nginx-port <n>',
      'port nginx listens on in front of the instances (when nginx is installed)',
      '8440',
    )
    .addOption(shared('stage'))
    .addOption(shared('state-dir'))
    .addOption(shared('witness'))
    .addOption(shared('supervisor'))
    .addOption(shared('unit-dir'))
    .addOption(shared('service-user'))
    .option('--dry-run', 'print the plan and touch nothing')
    .action(async (flags: Flags) => {
      const n = intFlag(flags.instances, '--instances', 1, 16);
      const loaded = await loadCommandConfig(ctx, flags, { productionRules: 'report' });
      const out = io.output(flags);
      for (const w of loaded.warnings) out.warn(w);
      const state = resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
      // A fleet already under systemd stays there when deployed again without the flag.
      const supervisor = flags.supervisor ?? (runsUnderSystemd(state) ? 'systemd' : 'ifmesh');
      const progress = await createProgress(ctx, Boolean(flags.json));
      const report = await deploy(
        {
          state,
          agentsDir: path.resolve(ctx.cwd, flags.agentsDir),
          instances: n,
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
          config: resolveWitness(loaded, flags.witness, state),
          cwd: ctx.cwd,
          progress,
          launchEnv: launchEnv(ctx.env, loaded),
          clusterSecret: loaded.raw.SIGNALING_CLUSTER_SECRET || undefined,
          supervise: supervisor !== 'none',
          systemd:
            supervisor === 'systemd'
              ? resolveSystemdSettings(state, {
                  unitDir: flags.unitDir,
                  user: flags.serviceUser,
                  env: ctx.env,
                })
              : undefined,
          production: { envFile: loaded.file, configIssues: loaded.productionIssues },
          caFile: ctx.tls?.caFile,
        },
        Boolean(flags.dryRun),
        ctx,
      ).finally(() => progress.close());
      out.result(report, (r, c) =>
        [
          r.applied
            ? `${c.green('✓ deployed')} ${r.plan.deployment_id} (${r.plan.release_ref}, config ${r.plan.config_hash})`
            : `${c.bold('plan')} for ${r.plan.deployment_id} (dry run: nothing changed)`,
          r.build
            ? `  release    ${r.build.build.name}@${r.build.build.version} ${r.build.build.integrity.slice(0, 23)}… in ${r.build.build.dir}${r.build.installed ? '' : ' (already installed)'}`
            : r.plan.release
              ? `  release    ${r.plan.release.action}${r.plan.release.integrity ? ` (${r.plan.release.integrity.slice(0, 23)}…)` : ''}`
              : '',
          ...r.plan.instances.map((i) => `  signaling  ${i.name} ${i.url}`),
          r.plan.endpoints.tls
            ? `  tls        ${r.plan.endpoints.tls.cert}${r.plan.endpoints.tls.ca ? ` (verified against ${r.plan.endpoints.tls.ca})` : ''}`
            : '',
          r.plan.nginx
            ? `  nginx      ${r.plan.nginx.url} → ${r.plan.nginx.upstreams.join(', ')} (least_conn, max_fails=3 fail_timeout=30s)`
            : c.dim('  nginx      not installed: agents get every instance URL'),
          `  agents     ${r.plan.agents.map((a) => a.agent_id).join(', ')} → ${r.plan.agents_connect_to.join(', ')}`,
          r.plan.systemd
            ? `  systemd    units in ${r.plan.systemd.unit_dir}, run as ${r.plan.systemd.user} (${r.plan.systemd.units.join(', ')})`
            : '',
          r.release_file ? c.dim(`  record     ${r.release_file}`) : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });
}
