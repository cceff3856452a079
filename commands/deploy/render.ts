import type { ChalkInstance } from 'chalk';
import type { DeployReport } from '../../src/ops/deploy/deploy.js';

/** `deploy`'s human output: the plan (dry run) or what was deployed. */
export function renderDeploy(r: DeployReport, c: ChalkInstance): string {
  return [
    r.applied
      ? `${c.green('✓ deployed')} ${r.plan.deployment_id} (${r.plan.release_ref}, config ${r.plan.config_hash})`
      : `${c.bold('plan')} for ${r.plan.deployment_id} (dry run: nothing changed)`,
    r.build
      ? `  release    ${r.build.build.name}@${r.build.build.version} ${r.build.build.integrity.slice(0, 23)}… in ${r.build.build.dir}${r.build.installed ? '' : ' (already installed)'}`
      : r.plan.release
        ? `  release    ${r.plan.release.action}${r.plan.release.integrity ? ` (${r.plan.release.integrity.slice(0, 23)}…)` : ''}`
        : '',
    ...r.plan.instances.map((i) => `  signaling  ${i.name} ${i.url}`),
    `  mode       ${
      r.plan.signaling_mode === 'redis'
        ? `redis: every instance active, one mesh through ${r.plan.redis?.url ?? 'Redis'}${r.plan.redis?.start ? ' (started as deploy-redis)' : ''}`
        : r.plan.signaling_mode === 'standby'
          ? 'standby: one instance active, the others hot standbys behind nginx (no Redis: apt-get install redis-server, or set SIGNALING_CLUSTER_URL)'
          : 'single instance'
    }`,
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
    .join('\n');
}
