// The runbook's Step 2 and Step 3 (deploy-signaling-server.sh, deploy-agent-mesh.sh), made safe: a
// pure plan first (what --dry-run prints), then apply under the deploy lock, recording a release.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { httpUrlOf } from '../../clients/signaling.js';
import { type AgentConfig, loadAgentConfig } from '../../config/agent-config.js';
import type { MeshConfig } from '../../config/load.js';
import { readIdentity } from '../../crypto/key-file.js';
import {
  CheckFailedError,
  ConfigError,
  type ConfigIssue,
  UnreachableError,
  UsageError,
} from '../../errors.js';
import { applyNginx } from '../../exec/nginx.js';
import { probeRedis, redactRedisUrl } from '../../exec/redis.js';
import { packageVersion } from '../../paths.js';
import { requireFreeSpace } from '../../state/free-space.js';
import { withLock } from '../../state/lock.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import { waitFor } from '../../util/wait.js';
import { fleetTrustProblems, readCertificateChain } from '../certs/check.js';
import { openWitness } from '../events.js';
import { startAndWait } from '../fleet/restart.js';
import { Supervisor } from '../fleet/supervisor.js';
import type { SystemdSettings } from '../fleet/systemd.js';
import { unitNameOf } from '../fleet/systemd-units.js';
import { ensureWatchdog } from '../fleet/watchdog-process.js';
import { type ProductionInput, refuseUnlessProductionReady } from '../preflight/production.js';
import { checkStateRecords, type ProcedureJournal, withProcedure } from '../procedure.js';
import {
  buildRef,
  type InstallReport,
  installWithProgress,
  ownBin,
  previewRelease,
  type SourcePreview,
} from '../release/install.js';
import { agentProcessName, moveAgent, registrations } from '../rollout/agents.js';
import { hasBinary, type OpContext, signalingServeArgs } from '../shared.js';
import { generatedSecret, type LocalRedisAuth, localRedisAuth } from '../stack/service-secrets.js';
import { planSignalingTopology, redisProcessSpec, type SignalingMode } from '../stack/signaling-topology.js';
import { type DeployEndpoints, endpointHosts, nginxTls, planEndpoints, urlHost } from './endpoints.js';
import {
  type AgentSpec,
  currentRelease,
  isSecretKey,
  operator,
  type Release,
  recordRelease,
} from './releases.js';
import { type RestoreReport, restorePrevious } from './restore.js';

export interface DeployOptions {
  state: StateDir;
  agentsDir: string;
  instances: number;
  basePort: number;
  nginxPort: number;
  deploymentId: string | undefined;
  /** The code to deploy (src/ops/release/source.ts); undefined: the running ifmesh's own. */
  release: string | undefined;
  /** The release's name in `releases` and `rollback NAME` (default: its version). */
  label?: string | undefined;
  /** Release records (and their installed code) kept; older ones are removed. */
  keepReleases?: number;
  config: MeshConfig;
  cwd: string;
  progress: Progress;
  /** Environment the instances get (the config keys and IFMESH_CONFIG the operator ran deploy with). */
  launchEnv?: Record<string, string>;
  /**
   * The effective configuration's non-secret values (env file, environment, --set, defaults): part
   * of the release's config hash, so a release on another env file or --set shows another hash.
   * Secret values never enter it (a hash must not let anyone test guesses of a password).
   */
  configValues?: Record<string, string>;
  /** Run the state's supervisor (default), which restarts a service that dies. */
  supervise?: boolean;
  /** Run the services as systemd units instead (`--supervisor systemd`): systemd restarts them. */
  systemd?: SystemdSettings | undefined;
  /** A configured SIGNALING_CLUSTER_SECRET; without one, deploy generates one into the secrets file. */
  clusterSecret?: string | undefined;
  /** The env file read and the loader's reported production issues, for the production rules. */
  production?: Omit<ProductionInput, 'config'>;
  /** The CA the instances' certificate chains to (--ca, IFMESH_CA_FILE): nginx and the agents verify with it. */
  caFile?: string | undefined;
}

export interface DeployPlan {
  deployment_id: string;
  release_ref: string;
  /** `--release`: what would be installed (dry run), or what was; null: the running ifmesh's code. */
  release: SourcePreview | null;
  config_hash: string;
  instances: { name: string; port: number; url: string }[];
  nginx: {
    listen_port: number;
    url: string;
    upstreams: number[];
    backups: number[];
    conf: string;
    server_name: string;
  } | null;
  /** Bind address, scheme, certificate and public URL (SIGNALING_HOST, SIGNALING_TLS_*, SIGNALING_PUBLIC_URL). */
  endpoints: DeployEndpoints;
  /** "redis": every instance active, one mesh; "standby": one active, the rest nginx backups. */
  signaling_mode: SignalingMode;
  /** The Redis the instances share (password redacted); started as deploy-redis when `start`. */
  redis: { url: string; start: boolean } | null;
  agents: { agent_id: string; file: string }[];
  agents_connect_to: string[];
  witness: string | null;
  /** `--supervisor systemd`: where the units go, who runs them, and their names. */
  systemd: { unit_dir: string; user: string; units: string[] } | null;
}

export interface DeployReport {
  plan: DeployPlan;
  applied: boolean;
  /** The installed release the processes run (null: the running ifmesh's code). */
  build: InstallReport | null;
  registered: string[];
  release_file: string | null;
}

export async function loadAgentConfigs(dir: string, cwd: string): Promise<AgentConfig[]> {
  if (!existsSync(dir))
    throw new UsageError(
      `agents directory ${dir} does not exist`,
      'pass --agents-dir with config/agents/<id>.json files',
    );
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (files.length === 0) throw new UsageError(`${dir} holds no agent configs (*.json)`);
  const issues: ConfigIssue[] = [];
  const configs: AgentConfig[] = [];
  for (const f of files) {
    const full = path.join(dir, f);
    try {
      configs.push(await loadAgentConfig(full, path.relative(cwd, full) || full));
    } catch (err) {
      if (err instanceof ConfigError) issues.push(...err.issues);
      else throw err;
    }
  }
  const seen = new Map<string, string>();
  for (const c of configs) {
    const other = seen.get(c.agentId);
    if (other)
      issues.push({
        file: c.file,
        line: undefined,
        key: 'agent_id',
        message: `${c.agentId} is also used by ${other}`,
        fix: 'give every agent its own id',
      });
    seen.set(c.agentId, c.file);
    if (!existsSync(c.keyFile))
      issues.push({
        file: c.file,
        line: undefined,
        key: 'key',
        message: `${c.keyFile} does not exist`,
        fix: `create it with 'ifmesh keys generate --agent ${c.agentId}'`,
      });
    else {
      // Read as the agent will, so a key that is not one fails the plan, not the agent's start (a
      // canary then said only "did not register"); the error never echoes key material.
      const bad = await readIdentity(c.keyFile).then(
        () => undefined,
        (err: unknown) => {
          if (!(err instanceof UsageError)) throw err;
          // Only a file that is not a key: one this user cannot read (chowned to the units' service
          // user, as preflight suggests) is the agent's to read, not this command's.
          return err.code === 'key_invalid' ? err : undefined;
        },
      );
      if (bad)
        issues.push({
          file: c.file,
          line: undefined,
          key: 'key',
          message: bad.message,
          fix: bad.hint ?? `create it with 'ifmesh keys generate --agent ${c.agentId}'`,
        });
    }
  }
  if (issues.length) throw new ConfigError(issues);
  return configs;
}

/**
 * SIGNALING_CLUSTER_URL when configured; else, with redis-server installed, one deploy starts on
 * the port after the instances'; else none (standby mode).
 */
async function deployRedis(
  o: DeployOptions,
  ctx: OpContext,
): Promise<{ url: string; start: boolean } | null> {
  if (o.config.signalingClusterUrl) return { url: o.config.signalingClusterUrl, start: false };
  return (await hasBinary(ctx, 'redis-server'))
    ? { url: `redis://127.0.0.1:${o.basePort + o.instances}`, start: true }
    : null;
}

/** Pure: what a deploy would do, from the options and the validated agent configs. */
export function buildPlan(
  o: DeployOptions,
  agents: AgentConfig[],
  nginx: boolean,
  version: string,
  now: number,
  redis: { url: string; start: boolean } | null = null,
  release: SourcePreview | null = null,
): DeployPlan {
  const endpoints = planEndpoints(o.config, o.caFile);
  const at = (port: number) => `${endpoints.scheme}://${urlHost(endpoints.dial_host)}:${port}`;
  const instances = Array.from({ length: o.instances }, (_, i) => ({
    name: `deploy-signaling-${i + 1}`,
    port: o.basePort + i,
    url: at(o.basePort + i),
  }));
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        instances: instances.map((x) => x.port),
        config: Object.entries(o.configValues ?? {})
          .filter(([k]) => !isSecretKey(k))
          .sort(([a], [b]) => (a < b ? -1 : 1)),
        agents: agents.map((a) => [
          a.agentId,
          readFileSync(a.file.startsWith('/') ? a.file : path.join(o.cwd, a.file), 'utf8'),
        ]),
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const topology = planSignalingTopology({ instances: instances.map((x) => x.port), redis, frontDoor: null });
  // nginx in front of TLS instances needs a name to verify them by: refused here, dry run included.
  if (nginx) nginxTls(endpoints);
  // A fleet that verifies against a CA of its own: a certificate that CA did not issue, or that
  // names none of the hosts clients dial, would leave every agent refusing it after a "good" start.
  if (endpoints.tls?.ca) {
    const refused = fleetTrustProblems(readCertificateChain(endpoints.tls.cert), {
      caFile: endpoints.tls.ca,
      hosts: endpointHosts(endpoints),
    });
    if (refused.length)
      throw new UsageError(
        `${endpoints.tls.cert}: ${refused.join('; ')}`,
        'install a certificate the CA issued for those hosts (ifmesh certs check shows what it names)',
      );
  }
  const ng = nginx
    ? {
        listen_port: o.nginxPort,
        url: at(o.nginxPort),
        ...topology.nginx,
        conf: o.state.nginxConf,
        server_name: endpoints.server_name,
      }
    : null;
  return {
    deployment_id: o.deploymentId ?? `deploy-${now}-${randomBytes(2).toString('hex')}`,
    release_ref: o.label ?? (release?.version ? `${release.name}@${release.version}` : version),
    release,
    config_hash: hash,
    instances,
    nginx: ng,
    signaling_mode: topology.mode,
    redis: topology.redis ? { url: topology.redis.shown, start: topology.redis.start } : null,
    agents: agents.map((a) => ({ agent_id: a.agentId, file: a.file })),
    endpoints,
    agents_connect_to: endpoints.public_url
      ? [endpoints.public_url]
      : ng
        ? [ng.url]
        : instances.map((x) => x.url),
    witness: o.config.witnessApiKey ? o.config.witnessUrl : null,
    systemd: o.systemd
      ? {
          unit_dir: o.systemd.unit_dir,
          user: o.systemd.user,
          units: [
            ...(topology.redis?.start ? [unitNameOf({ name: 'deploy-redis', role: 'redis' })] : []),
            ...instances.map((x) => unitNameOf({ name: x.name, role: 'signaling', port: x.port })),
            ...agents.map((a) => unitNameOf({ name: agentProcessName(a.agentId), role: 'agents' })),
          ],
        }
      : null,
  };
}

export async function deploy(o: DeployOptions, dryRun: boolean, ctx: OpContext): Promise<DeployReport> {
  // PRODUCTION_MODE=true: refused (exit 2, every failing rule named) before anything is read or started.
  await refuseUnlessProductionReady({ envFile: undefined, ...o.production, config: o.config });
  const agents = await loadAgentConfigs(o.agentsDir, o.cwd);
  const version = packageVersion();
  const redis = await deployRedis(o, ctx);
  const preview = o.release ? await previewRelease(o.state, o.release, ctx) : null;
  const plan = buildPlan(o, agents, await hasBinary(ctx, 'nginx'), version, ctx.clock.now(), redis, preview);
  if (dryRun) return { plan, applied: false, build: null, registered: [], release_file: null };
  const poll = (cond: () => Promise<boolean>, timeoutMs: number) =>
    waitFor(cond, { timeoutMs, intervalMs: 100 }, ctx.clock, ctx.signal);
  checkStateRecords(o.state);
  await requireFreeSpace(o.state, 'ifmesh deploy');
  return withLock(
    o.state,
    'deploy',
    `deploy ${plan.deployment_id}`,
    // Journaled (src/ops/procedure.ts): a deploy killed midway is named by `status`, and a deploy
    // run again converges (every step is idempotent: a running Redis answering is kept, instances
    // and agents are replaced, the release is recorded once everything registered).
    () =>
      withProcedure(
        o.state,
        'deploy',
        {
          summary: `deploy ${plan.deployment_id} (${plan.release_ref})`,
          rerun: rerunCommand(o, plan),
          // The env file and --set values are the operator's, not known here.
          rerun_note: 'with the configuration it was given',
        },
        ctx,
        (journal) => apply(journal),
      ),
    ctx.clock,
  );

  async function apply(journal: ProcedureJournal<'deploy'>): Promise<DeployReport> {
    journal.step('locked');
    const sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'deploy', systemd: o.systemd });
    let startedRedis = false;
    // What this deploy started: stopped again if it fails, so no record claims a half-made fleet.
    const started: string[] = [];
    // The release running before: put back if this deploy fails (restore.ts). One that cannot be
    // read, or that does not run (`down` stopped it), is not: the deploy found no fleet to keep.
    const recorded = await currentRelease(o.state).catch(() => undefined);
    const previous = recorded?.agents.some((id) => sup.running(agentProcessName(id)) !== undefined)
      ? recorded
      : undefined;
    // Whether this deploy has stopped or restarted anything of the fleet yet (nothing to undo before).
    let touched = false;
    const node = process.execPath;
    // The release's code installed once (kept for rollback), before anything is stopped.
    const build = await installWithProgress(o.state, o.release, o.progress, ctx);
    const bin = build?.build.bin ?? ownBin();
    let clusterEnv: Record<string, string> = {};
    const instanceSpec = (inst: DeployPlan['instances'][number], entry: string) => ({
      name: inst.name,
      role: 'signaling' as const,
      port: inst.port,
      url: inst.url,
      command: node,
      args: signalingServeArgs(entry, {
        port: inst.port,
        instanceId: inst.name,
        state: o.state,
        host: plan.endpoints.bind_host,
      }),
      // The env file and the configuration the operator ran deploy with, kept in the record
      // so a restart (supervisor, incident, failover) starts the instance the same way.
      env: { ...withoutAdminKey(o.launchEnv), ...clusterEnv },
      cwd: o.cwd,
      supervised: true,
    });
    const witness = openWitness(
      { url: o.config.witnessUrl, apiKey: o.config.witnessApiKey, state: o.state },
      `deploy-${plan.deployment_id}`,
      ctx,
    );
    try {
      witness?.log({
        event: 'webrtc_deployment_started',
        deployment_id: plan.deployment_id,
        metadata: {
          release: plan.release_ref,
          config_hash: plan.config_hash,
          instances: plan.instances.length,
          agents: plan.agents.length,
        },
      });
      // deploy's own Redis gets a generated password (0600 config file); instances get the URL
      // with it and the cluster secret through their environment, never on their command line.
      const redisAuth = redis?.start
        ? localRedisAuth(o.state, 'deploy-redis', Number(new URL(redis.url).port))
        : undefined;
      startedRedis = redis ? await ensureRedis(o, sup, redis, redisAuth, poll) : false;
      journal.step('redis_ready');
      clusterEnv = redis
        ? {
            SIGNALING_CLUSTER_URL: redisAuth?.url ?? redis.url,
            SIGNALING_CLUSTER_SECRET: o.clusterSecret || generatedSecret(o.state, 'SIGNALING_CLUSTER_SECRET'),
          }
        : {};
      touched = true;
      for (const inst of plan.instances) {
        o.progress.step(inst.name, 'running', `starting on port ${inst.port}`);
        await sup.stop(inst.name, 5_000);
        const r = await startAndWait(sup, instanceSpec(inst, bin), ctx, 15_000);
        if (!r.ok)
          throw new CheckFailedError(`${inst.name} on port ${inst.port} is not healthy: ${r.detail}`);
        started.push(inst.name);
        o.progress.step(inst.name, 'ok', `healthy on ${inst.url}`);
      }
      journal.step('instances_started');
      if (plan.nginx) {
        const prefix = path.dirname(plan.nginx.conf);
        const running = sup.running('deploy-nginx') !== undefined;
        if (!running) started.push('deploy-nginx');
        // nginx daemonizes: adopt its master pid so `down` stops it like the rest.
        // Watched by the local supervisor like the instances (restarted from nginx.plan.json, the
        // fleet's restart path); under systemd no local watchdog runs, and incident p1 restarts it.
        sup.adopt(
          { name: 'deploy-nginx', role: 'nginx', port: plan.nginx.listen_port, url: plan.nginx.url },
          await applyNginx(
            {
              prefix,
              listenPort: plan.nginx.listen_port,
              listenHost: plan.endpoints.bind_host,
              upstreamHost: plan.endpoints.dial_host,
              upstreams: plan.nginx.upstreams,
              backups: plan.nginx.backups,
              serverName: plan.nginx.server_name,
              tls: nginxTls(plan.endpoints),
              errorLog: o.state.logFile('deploy-nginx'),
              accessLog: o.state.logFile('deploy-nginx-access'),
            },
            running,
            ctx,
          ),
          o.systemd ? {} : { supervised: true },
        );
        o.progress.step(
          'nginx',
          'ok',
          `${running ? 'reloaded' : 'started'} on ${plan.nginx.url} (${
            plan.signaling_mode === 'redis'
              ? `least_conn over ${plan.nginx.upstreams.length} instances sharing Redis`
              : `1 active instance, ${plan.nginx.backups.length} hot standby`
          })`,
        );
      }
      journal.step('nginx_applied');
      const specs: AgentSpec[] = plan.agents.map((a) => ({
        agent_id: a.agent_id,
        config: a.file.startsWith('/') ? a.file : path.join(o.cwd, a.file),
        signaling: plan.agents_connect_to,
        // The configuration this deploy was given (its env file as IFMESH_CONFIG, --set values, the
        // stage's implications), so an agent runs on it whoever restarts it; and the CA to verify
        // wss:// against.
        env: { ...agentLaunchEnv(o.launchEnv), ...(o.caFile ? { IFMESH_CA_FILE: o.caFile } : {}) },
        cwd: o.cwd,
        ...(build ? { bin: build.build.bin } : {}),
      }));
      for (const spec of specs) {
        await moveAgent(sup, spec);
        started.push(agentProcessName(spec.agent_id));
      }
      journal.step('agents_started');
      o.progress.step('agents', 'running', `waiting for ${plan.agents.length} agents to register`);
      const registered = new Set<string>();
      let unanswered: string[] = [];
      // Read over https when the instances serve TLS, verified against ctx's CA like every request.
      const apis = plan.instances.map((x) => httpUrlOf(x.url));
      await poll(async () => {
        const r = await registrations(apis, { dispatcher: ctx.dispatcher, signal: ctx.signal });
        for (const id of r.on.keys()) registered.add(id);
        unanswered = r.unanswered;
        return registered.size >= plan.agents.length;
      }, 20_000);
      const missing = plan.agents.map((a) => a.agent_id).filter((id) => !registered.has(id));
      if (missing.length) {
        const tails = missing.map((id) => `${id}:\n${sup.tail(`deploy-agent-${id}`, 5)}`).join('\n');
        const why = unanswered.length ? `\n${unanswered.join('\n')}` : '';
        // Every instance saying its shared registry is away: that is the reason, said first.
        const registryDown =
          plan.redis !== null &&
          unanswered.length === plan.instances.length &&
          unanswered.every((u) => u.includes('cluster_unavailable'));
        throw new CheckFailedError(
          registryDown
            ? `agents not registered after 20 s: ${missing.join(', ')}: the instances' shared registry (Redis, ${plan.redis!.url}) does not answer, so they refuse registrations${why}\n${tails}`
            : `agents not registered after 20 s: ${missing.join(', ')}${why}\n${tails}`,
          registryDown
            ? 'bring that Redis back (the instances reconnect to it by themselves), then run the deploy again'
            : undefined,
        );
      }
      o.progress.step('agents', 'ok', `${registered.size} agents registered`);
      journal.step('agents_registered');
      const release: Release = {
        id: `${new Date(ctx.clock.now()).toISOString().replace(/[:.]/g, '-')}-${plan.deployment_id}`,
        deployment_id: plan.deployment_id,
        ref: plan.release_ref,
        config_hash: plan.config_hash,
        created_at: new Date(ctx.clock.now()).toISOString(),
        processes: [
          ...plan.instances.map((x) => ({
            name: x.name,
            port: x.port,
            pid: sup.running(x.name),
            role: 'signaling' as const,
            url: x.url,
          })),
          ...(plan.nginx
            ? [
                {
                  name: 'deploy-nginx',
                  port: plan.nginx.listen_port,
                  role: 'nginx' as const,
                  url: plan.nginx.url,
                },
              ]
            : []),
          ...(redis?.start
            ? [{ name: 'deploy-redis', port: Number(new URL(redis.url).port), role: 'redis' as const }]
            : []),
        ],
        agents: plan.agents.map((a) => a.agent_id),
        version,
        who: operator(ctx.env),
        outcome: 'deployed',
        agent_specs: specs,
        ...(build ? { build: buildRef(build.build) } : {}),
      };
      const file = await recordRelease(o.state, release, o.keepReleases);
      journal.step('release_recorded', { release: release.id });
      witness?.log({
        event: 'webrtc_deployment_completed',
        deployment_id: plan.deployment_id,
        metadata: { release: plan.release_ref, release_id: release.id, agents: registered.size },
      });
      // Units are systemd's to restart; the local supervisor watches local processes only.
      if (o.supervise !== false && !o.systemd) {
        // On the deploy's configuration: it logs its restarts to the fleet's witness.
        const watchdog = await ensureWatchdog(sup, ctx, agentLaunchEnv(o.launchEnv));
        o.progress.step(
          'supervisor',
          watchdog.ok ? 'ok' : 'fail',
          `${watchdog.detail}: restarts a dead service`,
        );
      }
      return { plan, applied: true, build, registered: [...registered].sort(), release_file: file };
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0];
      let restored: RestoreReport | undefined;
      if (previous?.agent_specs && !touched) {
        // Failed before it changed anything (Redis refused, say): the fleet runs as it did.
      } else if (previous?.agent_specs) {
        // A fleet ran before this deploy: it runs again, as it was (restore.ts).
        restored = await restorePrevious(
          {
            sup,
            previous,
            instances: plan.instances,
            startInstance: (name, b) =>
              sup.start(instanceSpec(plan.instances.find((i) => i.name === name)!, b)),
            agents: plan.agents.map((a) => a.agent_id),
            moved: started.filter((n) => n.startsWith('deploy-agent-')),
            progress: o.progress,
            registerTimeoutMs: 20_000,
          },
          ctx,
        ).catch((e: Error) => ({
          release: previous.id,
          ok: false,
          instances_failed: [],
          not_registered: [],
          detail: `putting ${previous.id} back failed: ${e.message}`,
        }));
        // The message says what runs now; the error keeps its class, exit code and hint.
        (err as Error).message += `\n${restored.detail}`;
      } else {
        // A failed first deploy stops what it started, its own Redis too (one an earlier deploy started stays).
        o.progress.step(
          'rollback',
          'running',
          `stopping what this deploy started (${started.length + (startedRedis ? 1 : 0)} processes)`,
        );
        for (const name of started.reverse()) await sup.stop(name, 2_000);
        if (startedRedis) await sup.stop('deploy-redis', 2_000);
      }
      witness?.log({
        event: 'webrtc_deployment_failed',
        deployment_id: plan.deployment_id,
        metadata: {
          release: plan.release_ref,
          reason,
          restored: restored ? { release: restored.release, ok: restored.ok } : null,
        },
      });
      throw err;
    } finally {
      await witness?.close(1_500);
    }
  }
}

/** The deploy that converges after this one is killed: the same instances, ports, agents, code and label. */
function rerunCommand(o: DeployOptions, plan: DeployPlan): string {
  return [
    'ifmesh deploy',
    `--instances ${plan.instances.length}`,
    `--base-port ${o.basePort}`,
    ...(plan.nginx ? [`--nginx-port ${plan.nginx.listen_port}`] : []),
    `--agents-dir ${o.agentsDir}`,
    ...(o.release ? [`--release ${o.release}`] : []),
    `--label ${plan.release_ref}`,
    ...(o.systemd ? ['--supervisor systemd'] : o.supervise === false ? ['--supervisor none'] : []),
    `--state-dir ${o.state.root}`,
  ].join(' ');
}

/**
 * The secrets an agent (or the supervisor, which logs to the witness) uses; no other reaches it: not
 * the admin credentials, the cluster's Redis URL and secret, nor the paging and query secrets.
 */
const AGENT_SECRETS = new Set(['IF_WITNESS_API_KEY', 'TURN_PASSWORD']);

export function agentLaunchEnv(env: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env ?? {}).filter(([k]) => !isSecretKey(k) || AGENT_SECRETS.has(k)),
  );
}

/** An instance writes to the witness; the witness's admin key (cleanup) is not its to hold. */
function withoutAdminKey(env: Record<string, string> | undefined): Record<string, string> {
  const { IF_WITNESS_ADMIN_KEY: _admin, ...rest } = env ?? {};
  return rest;
}

/**
 * Starts deploy-redis (with the password in `auth`) unless it already answers to that password, or
 * checks a configured SIGNALING_CLUSTER_URL, credentials included.
 */
async function ensureRedis(
  o: DeployOptions,
  sup: Supervisor,
  redis: { url: string; start: boolean },
  auth: LocalRedisAuth | undefined,
  poll: (cond: () => Promise<boolean>, timeoutMs: number) => Promise<boolean>,
): Promise<boolean> {
  const url = auth?.url ?? redis.url;
  const shown = redactRedisUrl(url);
  const answer = await probeRedis(url);
  if (answer === 'ok') {
    o.progress.step('redis', 'ok', `answering on ${shown}`);
    return false;
  }
  if (!redis.start)
    throw new UnreachableError(
      answer === 'auth'
        ? `SIGNALING_CLUSTER_URL ${shown} refuses its credentials`
        : `SIGNALING_CLUSTER_URL ${shown} does not answer`,
      answer === 'auth'
        ? 'put the right user and password in SIGNALING_CLUSTER_URL (redis://USER:PASSWORD@HOST:PORT)'
        : 'start that Redis, or unset SIGNALING_CLUSTER_URL to run one active instance with hot standbys',
    );
  o.progress.step('redis', 'running', `starting on ${shown}`);
  // One that answers without our password (an older deploy's) is ours too: replaced.
  await sup.stop('deploy-redis', 2_000);
  const port = Number(new URL(redis.url).port);
  sup.start({
    ...redisProcessSpec('deploy-redis', port, o.state.root, auth!.configFile),
    url: auth!.plain,
    cwd: o.state.root,
    supervised: true,
  });
  const up = await poll(
    async () => (await probeRedis(url)) === 'ok' || sup.running('deploy-redis') === undefined,
    10_000,
  );
  if (!up || sup.running('deploy-redis') === undefined) {
    const last = sup.tail('deploy-redis', 15);
    await sup.stop('deploy-redis', 2_000);
    throw new CheckFailedError(
      `redis-server did not start on ${shown}:\n${last}`,
      `see ${sup.logFile('deploy-redis')}`,
    );
  }
  o.progress.step('redis', 'ok', `started on ${shown}`);
  return true;
}
