import { defineCommand } from '../../src/cli/define.js';
import { type ConfigFlags, intFlag } from '../../src/cli/options.js';
import { createProgress } from '../../src/ui/progress.js';

import type { DeployFlags } from './options.js';

type Flags = ConfigFlags & DeployFlags & { instances: string; dryRun?: boolean; json?: boolean };

export default defineCommand<Flags, [], 'witness'>({
  path: 'deploy',
  examples: [
    'ifmesh deploy --instances 2 --agents-dir config/agents --dry-run',
    'ifmesh deploy --deployment-id prod-42 --release v1.4.0',
    'ifmesh deploy --stage staging --release v1.4.0   # config/webrtc-staging.env, .ifmesh/stages/staging/',
  ],
  flags: [
    'config',
    'set',
    'json',
    {
      flags: '--instances <n>',
      description: 'signaling instances, on consecutive ports from --base-port',
      default: '2',
    },
    { flags: '--deployment-id <id>', description: 'names this deployment in events and the release record' },
    {
      flags: '--agents-dir <dir>',
      description: 'agent configs to validate and start',
      default: 'config/agents',
    },
    {
      flags: '--release <source>',
      description:
        "the code to deploy, installed once into <state>/releases/<id>/: a tarball, a directory, a git ref of the checkout or an npm spec (default: the running ifmesh's own)",
    },
    {
      flags: '--label <name>',
      description: 'name of the release in `releases` and `rollback NAME` (default: its version)',
    },
    {
      flags: '--keep-releases <n>',
      description: 'release records, and their installed code, kept for rollback',
      default: '10',
    },
    {
      flags: '--base-port <n>',
      description: "port of the first signaling instance (default: the env file's SIGNALING_PORT, 8443)",
    },
    {
      flags: '--nginx-port <n>',
      description: 'port nginx listens on in front of the instances (when nginx is installed)',
      default: '8440',
    },
    'stage',
    'state-dir',
    'witness',
    'supervisor',
    'unit-dir',
    'service-user',
    { flags: '--dry-run', description: 'print the plan and touch nothing' },
  ],
  needs: ['witness'],
  newState: true,
  productionRules: 'report',
  async run({ flags, needs: { config: loaded, state, witness }, ctx, out }) {
    const instances = intFlag(flags.instances, '--instances', 1, 16);
    for (const w of loaded.warnings) out.warn(w);
    const [{ deploy }, { deployOptions }, { renderDeploy }] = await Promise.all([
      import('../../src/ops/deploy/deploy.js'),
      import('./options.js'),
      import('./render.js'),
    ]);
    const progress = await createProgress(ctx, Boolean(flags.json));
    const resolved = { loaded, state, witness, progress };
    const report = await Promise.resolve()
      .then(() => deploy(deployOptions(flags, instances, resolved, ctx), Boolean(flags.dryRun), ctx))
      .finally(() => progress.close());
    out.result(report, renderDeploy);
  },
});
