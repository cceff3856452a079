import path from 'node:path';
import { httpRequest } from '../../clients/http.js';
import { CheckFailedError, UnreachableError } from '../../errors.js';
import { applyNginx } from '../../exec/nginx.js';
import { clusterPid, ensureDatabase, startCluster } from '../../exec/postgres.js';
import { prometheusArgs } from '../../exec/prometheus.js';
import { turnserverArgs } from '../../exec/turnserver.js';
import { packageRoot } from '../../paths.js';
import { redactDbUrl } from '../../services/witness/pg-store.js';
import { requireFreeSpace } from '../../state/free-space.js';
import { listProcesses } from '../../state/processes.js';
import { ensureSecrets } from '../../state/secrets.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import { waitFor } from '../../util/wait.js';
import { type ExchangeReport, messageExchange } from '../agent/exchange.js';
import { startAndWait } from '../fleet/restart.js';
import { type ProcessSpec, Supervisor } from '../fleet/supervisor.js';
import { ensureWatchdog } from '../fleet/watchdog-process.js';
import { exportMonitoring } from '../monitoring/export.js';
import { DEFAULT_THRESHOLDS } from '../monitoring/thresholds.js';
import { hasBinary, type OpContext, signalingServeArgs } from '../shared.js';
import {
  generatedSecret,
  localPostgresPassword,
  localRedisAuth,
  localTurnConfig,
} from './service-secrets.js';
import { planSignalingTopology, redisProcessSpec } from './signaling-topology.js';
import { freePort, readStack, type StackFile, tcpOpen, urls, writeStack } from './stack.js';
import { ensureUpAgents, recordUpRelease } from './up-agents.js';

export interface UpOptions {
  state: StateDir;
  agents: number;
  instances: number;
  /** Where the witness keeps its log: SQLite (default), or a local PostgreSQL cluster in the state dir. */
  witnessDb?: 'sqlite' | 'postgres';
  progress: Progress;
  /** Also run Prometheus on loopback with the files `monitoring export` writes. */
  withPrometheus?: boolean;
  /** The verification's RTT p95 budget (default: the runbook's 100 ms). */
  maxRttP95Ms?: number;
  /** Run the state's supervisor (default), which restarts a service that dies. */
  supervise?: boolean;
}

export interface UpReport {
  state_dir: string;
  started: string[];
  already_running: string[];
  endpoints: {
    witness: string;
    /** The witness's database: its SQLite file, or the local PostgreSQL URL. */
    witness_db: string;
    signaling: string[];
    nginx: string | null;
    stun: string[];
    turn: string[];
    prometheus: string | null;
  };
  /** "redis": every instance active, one shared mesh; "standby": one active, the rest hot standbys. */
  signaling_mode: 'redis' | 'standby' | 'single';
  mesh: { agents: number; connected: number; expected: number };
  verification: ExchangeReport;
  /** The release `up` recorded for its agents (the first one; canary and rollback start from it). */
  release: { id: string; recorded: boolean };
  elapsed_ms: number;
}

/**
 * Brings up a complete local mesh (witness, coturn ×2 if installed, signaling ×N, agents) and
 * verifies it. Idempotent: what already runs and answers is left alone; stale pid files are cleared.
 */
export async function up(o: UpOptions, ctx: OpContext): Promise<UpReport> {
  const t0 = ctx.clock.now();
  await requireFreeSpace(o.state, 'ifmesh up');
  const sup = new Supervisor(o.state, { clock: ctx.clock, owner: 'up' });
  const poll = (cond: () => Promise<boolean>, timeoutMs: number) =>
    waitFor(cond, { timeoutMs, intervalMs: 100 }, ctx.clock, ctx.signal);
  const get = (url: string) =>
    httpRequest(url, { timeoutMs: 1_000, dispatcher: ctx.dispatcher, signal: ctx.signal }).catch(
      () => undefined,
    );
  const sec = ensureSecrets(o.state);
  let stack = readStack(o.state);
  // Nothing of an earlier stack runs (after `down`): plan again, so packages installed since are used.
  const anyRunning = listProcesses(o.state).some((r) => sup.pidOf(r) !== undefined);
  if (!stack || !anyRunning || stack.signaling.length !== o.instances || stack.agents !== o.agents) {
    const withCoturn = await hasBinary(ctx, 'turnserver');
    if (!withCoturn)
      o.progress.info(
        'coturn is not installed (apt-get install coturn): agents get no STUN/TURN server of their own',
      );
    stack = {
      version: 1,
      created_at: new Date(ctx.clock.now()).toISOString(),
      agents: o.agents,
      witness: stack?.witness ?? { name: 'witness', port: await freePort() },
      coturn: withCoturn
        ? await Promise.all(
            [1, 2].map(async (i) => ({
              name: `coturn-${i}`,
              port: await freePort(),
              relay: [49_200 + i * 200, 49_299 + i * 200] as [number, number],
            })),
          )
        : [],
      signaling: await Promise.all(
        Array.from({ length: o.instances }, async (_, i) => ({
          name: `signaling-${i + 1}`,
          port: await freePort(),
        })),
      ),
      ...((await hasBinary(ctx, 'nginx'))
        ? { nginx: { name: 'nginx' as const, port: await freePort() } }
        : {}),
      ...((await hasBinary(ctx, 'redis-server'))
        ? { redis: { name: 'redis' as const, port: await freePort() } }
        : {}),
    };
    writeStack(o.state, stack);
  }
  if (o.witnessDb === 'postgres' && !stack.postgres) {
    stack = { ...stack, postgres: { name: 'postgres', port: await freePort() } };
    writeStack(o.state, stack);
  }
  if (o.withPrometheus && !stack.prometheus) {
    if (!(await hasBinary(ctx, 'prometheus')))
      throw new UnreachableError('prometheus is not installed', 'apt-get install prometheus');
    stack = { ...stack, prometheus: { name: 'prometheus', port: await freePort() } };
    writeStack(o.state, stack);
  }
  const s: StackFile = stack;
  const node = process.execPath;
  const bin = path.join(packageRoot(), 'dist/bin/ifmesh.js');
  const baseEnv = {
    IF_WITNESS_ENDPOINT: urls.witness(s),
    IF_WITNESS_API_KEY: sec.witness_api_key,
    PRODUCTION_MODE: 'false',
    STUN_SERVERS: urls.stun(s).join(','),
    TURN_SERVERS: urls.turn(s).join(','),
    TURN_USERNAME: 'ifmesh',
    TURN_PASSWORD: sec.turn_password,
  };
  const started: string[] = [];
  const already: string[] = [];
  // Redis gets a generated password (from a 0600 config file), the instances it and a secret that
  // seals their messages, both through their environment: no credential is on a command line.
  const redisAuth = s.redis ? localRedisAuth(o.state, 'redis', s.redis.port) : undefined;
  const topology = planSignalingTopology({
    instances: s.signaling.map((x) => x.port),
    redis: redisAuth ? { url: redisAuth.url, start: true } : null,
    frontDoor: urls.nginx(s),
  });
  // A running stack keeps its topology; say what it would gain from packages installed since.
  const missing = [
    ...(!s.redis && s.signaling.length > 1 && (await hasBinary(ctx, 'redis-server'))
      ? ['Redis (one mesh across every instance)']
      : []),
    ...(!s.coturn.length && (await hasBinary(ctx, 'turnserver')) ? ['coturn (STUN/TURN)'] : []),
    ...(!s.nginx && (await hasBinary(ctx, 'nginx')) ? ['nginx in front of the instances'] : []),
  ];
  if (missing.length)
    o.progress.info(
      `this stack was made before ${missing.join(', ')} could run here; to add it: ifmesh down --state-dir ${o.state.root} && ifmesh up --state-dir ${o.state.root}`,
    );
  else if (!s.redis && s.signaling.length > 1)
    o.progress.info(
      'redis-server is not installed (apt-get install redis-server): one signaling instance is active, the others are hot standbys',
    );

  // Every service through the fleet's one start path, kept running by the supervisor.
  const ensure = async (spec: ProcessSpec) => {
    o.progress.step(spec.name, 'running', 'starting');
    const r = await startAndWait(sup, { cwd: o.state.root, supervised: true, ...spec }, ctx);
    if (!r.ok) throw new CheckFailedError(`${spec.name} ${r.detail}`, `see ${sup.logFile(spec.name)}`);
    (r.already_running ? already : started).push(spec.name);
    o.progress.step(spec.name, 'ok', r.already_running ? 'already running' : 'started');
  };

  // PostgreSQL daemonises through pg_ctl (as the postgres user when we are root): adopted by the pid
  // in postmaster.pid, like nginx, and stopped by `down` after the witness.
  // Its superuser's password is generated once and kept in the secrets file (initdb reads it from a
  // temp --pwfile); the witness gets the URL with it through its secret environment.
  const ensurePostgres = async (port: number): Promise<string> => {
    const password = localPostgresPassword(o.state);
    const dataDir = o.state.postgresData;
    const running = clusterPid(dataDir);
    if (running !== undefined && (await tcpOpen(port))) {
      if (sup.running('postgres') !== running)
        sup.adopt({ name: 'postgres', role: 'postgres', port, url: `postgres://127.0.0.1:${port}` }, running);
      already.push('postgres');
      o.progress.step('postgres', 'ok', 'already running');
    } else {
      o.progress.step('postgres', 'running', 'starting');
      await sup.stop('postgres', 10_000);
      const cluster = await startCluster({
        dataDir,
        socketDir: o.state.postgresSocket,
        logFile: sup.logFile('postgres'),
        port,
        password,
      });
      sup.adopt(
        { name: 'postgres', role: 'postgres', port, url: `postgres://127.0.0.1:${port}` },
        cluster.pid,
      );
      started.push('postgres');
      o.progress.step('postgres', 'ok', `started on 127.0.0.1:${port}`);
    }
    return ensureDatabase(port, 'witness', undefined, password);
  };

  let witnessDb = o.state.witnessDb;
  const pgWitness = o.witnessDb === 'postgres' && s.postgres;
  if (pgWitness) witnessDb = await ensurePostgres(s.postgres!.port);
  await ensure({
    name: 'witness',
    role: 'witness',
    url: urls.witness(s),
    port: s.witness.port,
    command: node,
    args: [
      bin,
      'witness',
      'serve',
      '--port',
      String(s.witness.port),
      // A database URL may carry a password: it goes in the environment, a file path on argv.
      ...(pgWitness ? [] : ['--db', witnessDb]),
      '--state-dir',
      o.state.root,
    ],
    // Writers (agents, instances, commands) hold IF_WITNESS_API_KEY; cleanup needs the admin key.
    env: {
      ...baseEnv,
      IF_WITNESS_ADMIN_KEY: generatedSecret(o.state, 'IF_WITNESS_ADMIN_KEY'),
      ...(pgWitness ? { WITNESS_DB_URL: witnessDb } : {}),
    },
  });
  for (const c of s.coturn) {
    await ensure({
      name: c.name,
      role: 'coturn',
      port: c.port,
      url: `turn:127.0.0.1:${c.port}?transport=udp`,
      command: 'turnserver',
      // The credential is in the 0600 file coturn reads with -c, not in its arguments.
      args: turnserverArgs({
        port: c.port,
        relayPorts: c.relay,
        configFile: localTurnConfig(o.state, c.name, 'ifmesh', sec.turn_password),
        allowLoopbackPeers: true,
      }),
    });
  }
  if (s.redis && redisAuth) {
    await ensure({
      ...redisProcessSpec('redis', s.redis.port, o.state.root, redisAuth.configFile),
      // The record keeps the URL without the password (health probes count NOAUTH as an answer).
      url: redisAuth.plain,
      port: s.redis.port,
    });
  }
  for (const sig of s.signaling) {
    await ensure({
      name: sig.name,
      role: 'signaling',
      port: sig.port,
      url: `ws://127.0.0.1:${sig.port}`,
      command: node,
      args: signalingServeArgs(bin, {
        port: sig.port,
        instanceId: sig.name,
        state: o.state,
        adminTokenFile: o.state.adminToken,
      }).concat(topology.serveArgs),
      env: {
        ...baseEnv,
        ...topology.serveEnv,
        ...(topology.redis
          ? { SIGNALING_CLUSTER_SECRET: generatedSecret(o.state, 'SIGNALING_CLUSTER_SECRET') }
          : {}),
      },
    });
  }
  if (s.nginx) {
    const nginxPort = s.nginx.port;
    const prefix = o.state.nginx;
    if (sup.running('nginx') !== undefined && (await tcpOpen(nginxPort))) {
      already.push('nginx');
      o.progress.step('nginx', 'ok', 'already running');
    } else {
      o.progress.step('nginx', 'running', 'starting');
      await sup.stop('nginx', 2_000);
      sup.adopt(
        { name: 'nginx', role: 'nginx', port: nginxPort, url: `ws://127.0.0.1:${nginxPort}` },
        await applyNginx(
          {
            prefix,
            listenPort: nginxPort,
            ...topology.nginx,
            errorLog: o.state.logFile('nginx'),
            accessLog: o.state.logFile('nginx-access'),
          },
          false,
          ctx,
        ),
        { supervised: true },
      );
      started.push('nginx');
      o.progress.step(
        'nginx',
        'ok',
        `started on ws://127.0.0.1:${nginxPort} in front of ${s.signaling.length} instances (${topology.mode})`,
      );
    }
  }
  if (o.withPrometheus && s.prometheus) {
    const port = s.prometheus.port;
    const dir = o.state.monitoring;
    const exported = exportMonitoring({
      outDir: dir,
      signaling: s.signaling.map((x) => `127.0.0.1:${x.port}`),
      witness: `127.0.0.1:${s.witness.port}`,
      thresholds: DEFAULT_THRESHOLDS,
      scrapeInterval: '5s',
    });
    await ensure({
      name: 'prometheus',
      role: 'prometheus',
      port,
      url: `http://127.0.0.1:${port}`,
      command: 'prometheus',
      args: prometheusArgs({
        configFile: exported.files.scrape_config,
        port,
        dataDir: o.state.prometheusData,
      }),
    });
  }
  const first = urls.signalingHttp(s)[0]!;
  const countAgents = async () => {
    const r = await get(`${first}/agents`);
    return ((r?.json as { agents?: { agent_id: string }[] })?.agents ?? []).filter((a) =>
      a.agent_id.startsWith('agent-'),
    ).length;
  };
  const agentIds = Array.from({ length: o.agents }, (_, i) => `agent-${i + 1}`);
  o.progress.step('agents', 'running', `starting ${o.agents} agents`);
  const agents = await ensureUpAgents(sup, { ids: agentIds, signaling: topology.agentUrls }, ctx);
  started.push(...agents.started);
  already.push(...agents.already);
  if (!(await poll(async () => (await countAgents()) === o.agents, 20_000)))
    throw new CheckFailedError(
      `${o.agents - (await countAgents())} of ${o.agents} agents did not register`,
      `see ${sup.logFile(agents.specs[0] ? `deploy-agent-${agents.specs[0].agent_id}` : 'agents')}`,
    );
  o.progress.step('agents', 'ok', `${o.agents} agents registered`);
  // The state's supervisor restarts any service above that dies (`ifmesh supervise`).
  if (o.supervise !== false) {
    const watchdog = await ensureWatchdog(sup, ctx);
    if (!watchdog.ok)
      throw new CheckFailedError(`the supervisor ${watchdog.detail}`, `see ${sup.logFile('supervisor')}`);
    (watchdog.already_running ? already : started).push(watchdog.name);
  }
  const expected = o.agents * (o.agents - 1);
  let connected = 0;
  await poll(async () => {
    const r = await get(`${first}/connections`);
    connected = ((r?.json as { connections?: { state: string }[] })?.connections ?? []).filter(
      (c) => c.state === 'connected',
    ).length;
    return connected >= expected;
  }, 20_000);
  o.progress.step(
    'mesh',
    connected >= expected ? 'ok' : 'fail',
    `${o.agents} agents, ${connected}/${expected} connection reports connected`,
  );
  o.progress.step('verify', 'running', 'temporary agents exchange signed messages over every pair');
  const verification = await messageExchange({
    signalingUrls: urls.signaling(s),
    iceServers: s.coturn.length ? [{ urls: urls.stun(s)[0]! }] : [],
    agents: 3,
    messages: 20,
    loopbackOnly: true,
    formTimeoutMs: 20_000,
    rejectUnauthorized: true,
    clock: ctx.clock,
    maxRttP95Ms: o.maxRttP95Ms,
  });
  o.progress.step(
    'verify',
    verification.ok ? 'ok' : 'fail',
    `${verification.pongs_received}/${verification.pings_sent} signed pings answered`,
  );
  return {
    state_dir: o.state.root,
    started,
    already_running: already,
    endpoints: {
      witness: urls.witness(s),
      witness_db: pgWitness ? redactDbUrl(witnessDb) : witnessDb,
      signaling: urls.signaling(s),
      nginx: urls.nginx(s),
      stun: urls.stun(s),
      turn: urls.turn(s),
      prometheus: urls.prometheus(s),
    },
    signaling_mode: topology.mode,
    mesh: { agents: await countAgents(), connected, expected },
    verification,
    release: await recordUpRelease(o.state, agents.specs, s, ctx),
    elapsed_ms: ctx.clock.now() - t0,
  };
}
