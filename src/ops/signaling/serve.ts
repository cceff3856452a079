import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Gauge } from 'prom-client';
import type { Dispatcher } from 'undici';
import type { MeshConfig } from '../../config/load.js';
import { listenFailure, UsageError } from '../../errors.js';
import { loadAllowList } from '../../services/signaling/allow-list.js';
import { BlockList } from '../../services/signaling/block-list.js';
import { IdentityFile } from '../../services/signaling/identities.js';
import { RedisCluster, redact } from '../../services/signaling/redis-cluster.js';
import { MemoryRegistry } from '../../services/signaling/registry.js';
import { createSignalingServer } from '../../services/signaling/server.js';
import type { StateDir } from '../../state/state-dir.js';
import { openWitness } from '../events.js';
import { untilAborted } from '../shared.js';

export interface ServeSignalingOptions {
  config: MeshConfig;
  host: string;
  port: number;
  instanceId: string;
  state: StateDir;
  adminTokenFile?: string | undefined;
  allowKeysFile?: string | undefined;
  allowedOrigins?: string[] | undefined;
  maxConnectionsPerIp: number;
  reapAfterMs: number;
  registerTimeoutMs: number;
  headersTimeoutMs: number;
  /** Liveness TTL of this instance in the cluster (with SIGNALING_CLUSTER_URL). */
  clusterTtlMs?: number | undefined;
  /** SIGNALING_CLUSTER_SECRET: the key every cluster message is sealed with (required in production). */
  clusterSecret?: string | undefined;
  signal: AbortSignal;
  /** The witness client's HTTP (ctx.dispatcher: trusts --ca / IFMESH_CA_FILE). */
  dispatcher?: Dispatcher | undefined;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface SignalingReady {
  url: string;
  http_url: string;
  instance_id: string;
  pid: number;
  witness: string | null;
  /** The cluster store (password redacted), or null when standalone. */
  cluster: string | null;
}

function openIdentities(file: string): IdentityFile {
  try {
    return new IdentityFile(file);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The block list `ifmesh agents block` keeps; an unreadable one stops the start with a usage error. */
function openBlockList(file: string): BlockList {
  try {
    return new BlockList(file);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function readSecretFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(
      `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code}`,
      'check the path and its permissions',
    );
  }
  if (!text) throw new UsageError(`${what} ${file} is empty`);
  return text;
}

/** Runs one signaling instance until `signal` aborts, then drains (1012 to agents) and stops. */
export async function serveSignaling(
  opts: ServeSignalingOptions,
  onReady: (info: SignalingReady) => void,
): Promise<void> {
  const c = opts.config;
  const adminToken = opts.adminTokenFile
    ? readSecretFile(opts.adminTokenFile, 'admin token file')
    : c.signalingAdminToken || undefined;
  if (!adminToken) opts.log('warn', 'no admin token configured: every /admin/* call will be refused (401)');
  const allowKeysFile = opts.allowKeysFile ?? c.signalingAllowKeys;
  const allowList = allowKeysFile
    ? loadAllowList(readSecretFile(allowKeysFile, 'allow-list'), allowKeysFile)
    : undefined;
  const identities = openIdentities(opts.state.signalingIdentities);
  let tls: { cert: string; key: string } | undefined;
  if (c.signalingTlsCert || c.signalingTlsKey) {
    if (!c.signalingTlsCert || !c.signalingTlsKey)
      throw new UsageError(
        'TLS needs both a certificate and a key',
        'pass --tls-cert and --tls-key together',
      );
    tls = {
      cert: readSecretFile(c.signalingTlsCert, 'TLS certificate'),
      key: readSecretFile(c.signalingTlsKey, 'TLS key'),
    };
  }
  const witness = openWitness(
    { url: c.witnessUrl, apiKey: c.witnessApiKey, state: opts.state },
    `signaling-${opts.instanceId}`,
    { dispatcher: opts.dispatcher },
    {
      onError: (err) => opts.log('warn', 'witness', { error: err.message }),
      onKeyChanged: (change) => {
        opts.log('error', 'witness_key_changed', { ...change, hint: `ifmesh witness trust ${change.url}` });
        server.core.metrics.witnessKeyChanged.inc({ reporter: 'signaling' });
      },
    },
  );
  if (!witness) opts.log('warn', 'IF_WITNESS_API_KEY is not set: no audit events will be written');
  if (c.signalingClusterUrl && !opts.clusterSecret && c.productionMode)
    throw new UsageError(
      'SIGNALING_CLUSTER_SECRET is not set: in production every cluster message must be sealed with a secret the instances share',
      'set SIGNALING_CLUSTER_SECRET (the same random value on every instance) in the environment or the env file',
    );
  const cluster = c.signalingClusterUrl
    ? new RedisCluster({
        url: c.signalingClusterUrl,
        instanceId: opts.instanceId,
        ttlMs: opts.clusterTtlMs,
        secret: opts.clusterSecret,
        log: opts.log,
      })
    : undefined;
  // Standalone, the file is the store; in a cluster Redis is, and the file its mirror (a Redis that
  // restarted empty is re-seeded from it as agents register).
  if (cluster) cluster.registry.mirror = identities;
  const server = createSignalingServer({
    instanceId: opts.instanceId,
    adminToken,
    allowList,
    blockList: openBlockList(opts.state.blockList),
    allowedOrigins: opts.allowedOrigins,
    maxConnectionsPerIp: opts.maxConnectionsPerIp,
    reapAfterMs: opts.reapAfterMs,
    registerTimeoutMs: opts.registerTimeoutMs,
    headersTimeoutMs: opts.headersTimeoutMs,
    tls,
    events: witness,
    log: opts.log,
    ...(cluster
      ? { cluster, registry: cluster.registry, relay: cluster.relay }
      : { registry: new MemoryRegistry(identities) }),
    settings: {
      turnFallbackTimeout: c.turnFallbackTimeoutMs,
      iceTransportPolicy: c.iceTransportPolicy,
      stunServers: c.stunServers.map((u) => u.url),
      turnServers: c.turnServers.map((u) => u.url),
      heartbeatTimeoutMs: 30_000,
      statsIntervalMs: 2_000,
    },
  });
  // The certificate this instance serves, for the expiry alerts (monitoring export): its notAfter.
  if (tls)
    new Gauge({
      name: 'webrtc_tls_certificate_expiry_timestamp_seconds',
      help: 'notAfter of the TLS certificate this instance serves (Unix seconds)',
      registers: [server.core.metrics.registry],
    }).set(Date.parse(new X509Certificate(tls.cert).validTo) / 1000);
  try {
    await server.listen(opts.port, opts.host);
  } catch (err) {
    await cluster?.close();
    await witness?.close(500);
    throw listenFailure(err, opts.host, opts.port);
  }
  onReady({
    url: server.url,
    http_url: server.httpUrl,
    instance_id: opts.instanceId,
    pid: process.pid,
    witness: witness ? c.witnessUrl : null,
    cluster: cluster ? redact(c.signalingClusterUrl) : null,
  });
  await untilAborted(opts.signal);
  opts.log('info', 'draining');
  await server.close();
  // The last events (departures, shutdown) go to the witness or, if it is down, to the spool.
  await witness?.close(1_500);
}
