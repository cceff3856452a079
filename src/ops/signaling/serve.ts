import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WitnessClient } from '../../clients/witness.js';
import type { MeshConfig } from '../../config/load.js';
import { listenFailure, UsageError } from '../../errors.js';
import { loadAllowedKeys } from '../../services/signaling/allow-list.js';
import { BlockList } from '../../services/signaling/block-list.js';
import { RedisCluster, redact } from '../../services/signaling/redis-cluster.js';
import { createSignalingServer } from '../../services/signaling/server.js';
import { statePaths } from '../../state/state-dir.js';
import { untilAborted } from '../shared.js';

export interface ServeSignalingOptions {
  config: MeshConfig;
  host: string;
  port: number;
  instanceId: string;
  stateDir: string;
  adminTokenFile?: string | undefined;
  allowKeysFile?: string | undefined;
  allowedOrigins?: string[] | undefined;
  maxConnectionsPerIp: number;
  reapAfterMs: number;
  registerTimeoutMs: number;
  headersTimeoutMs: number;
  /** Liveness TTL of this instance in the cluster (with SIGNALING_CLUSTER_URL). */
  clusterTtlMs?: number | undefined;
  signal: AbortSignal;
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
  const allowedKeys = opts.allowKeysFile
    ? loadAllowedKeys(readSecretFile(opts.allowKeysFile, 'allow-list'), opts.allowKeysFile)
    : undefined;
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
  const witness = c.witnessApiKey
    ? new WitnessClient({
        url: c.witnessUrl,
        apiKey: c.witnessApiKey,
        producer: `signaling-${opts.instanceId}`,
        spoolDir: path.join(opts.stateDir, 'witness-spool'),
        stateDir: opts.stateDir,
        onError: (err) => opts.log('warn', 'witness', { error: err.message }),
        onKeyChanged: (change) => {
          opts.log('error', 'witness_key_changed', { ...change, hint: `ifmesh witness trust ${change.url}` });
          server.core.metrics.witnessKeyChanged.inc({ reporter: 'signaling' });
        },
      })
    : undefined;
  if (!witness) opts.log('warn', 'IF_WITNESS_API_KEY is not set: no audit events will be written');
  const cluster = c.signalingClusterUrl
    ? new RedisCluster({
        url: c.signalingClusterUrl,
        instanceId: opts.instanceId,
        ttlMs: opts.clusterTtlMs,
        log: opts.log,
      })
    : undefined;
  const server = createSignalingServer({
    instanceId: opts.instanceId,
    adminToken,
    allowedKeys,
    blockList: openBlockList(statePaths(opts.stateDir).blockList),
    allowedOrigins: opts.allowedOrigins,
    maxConnectionsPerIp: opts.maxConnectionsPerIp,
    reapAfterMs: opts.reapAfterMs,
    registerTimeoutMs: opts.registerTimeoutMs,
    headersTimeoutMs: opts.headersTimeoutMs,
    tls,
    events: witness,
    log: opts.log,
    ...(cluster ? { cluster, registry: cluster.registry, relay: cluster.relay } : {}),
    settings: {
      turnFallbackTimeout: c.turnFallbackTimeoutMs,
      iceTransportPolicy: c.iceTransportPolicy,
      stunServers: c.stunServers.map((u) => u.url),
      turnServers: c.turnServers.map((u) => u.url),
      heartbeatTimeoutMs: 30_000,
      statsIntervalMs: 2_000,
    },
  });
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
