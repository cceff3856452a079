// The evidence the decision trees read, each getter a real look at the mesh: the signaling HTTP API of
// every instance, IF.witness queries, STUN/TURN probes and the signaling TLS certificate. Every getter
// is memoised for one walk, so a tree that asks twice sees the same facts (and the output shows them).
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import type { Dispatcher } from 'undici';
import { answeredFix, isUnverifiedCertificate } from '../../clients/http.js';
import { SignalingClient } from '../../clients/signaling.js';
import type { ConfigResponse, ConnectionInfo, Health } from '../../protocol/signaling-api.js';
import type { Clock } from '../../util/clock.js';
import { mergeAgents, mergeConnections } from '../fleet-views.js';
import { runWitnessQuery } from '../witness/query.js';
import { type ProbeResult, probeStun, probeTurnAllocate } from './probes.js';

export interface EvidenceSources {
  /** http(s) base URLs of the signaling instances. */
  signaling: string[];
  witness: { url: string; token?: string | undefined };
  turn: { username: string; password: string } | undefined;
  production: boolean;
  allowSelfSigned: boolean;
  dispatcher?: Dispatcher | undefined;
  /** Probe timeouts (ms). */
  probeTimeoutMs?: number;
  /** Overrides of the runbook's limits (trees.ts LIMITS). */
  limits?: Partial<import('./trees.js').Limits>;
  /** The context's clock: probe timeouts run on it, and a certificate is expired relative to it. */
  clock: Clock;
  /** The agents the fleet deploys (current release, recorded processes): known even when unregistered. */
  fleetAgents?: string[];
}

export interface InstanceHealth {
  url: string;
  up: boolean;
  /** What /health said (null: it did not answer). */
  status: Health['status'] | null;
  instance_id?: string;
  cluster_id?: string;
  error?: string;
  /** It answered, with a certificate this command does not trust: up, as far as anyone knows. */
  unverified?: boolean;
  /** It answered, but not so this command can read it (that certificate, or TLS on an http:// URL). */
  answered?: NonNullable<ReturnType<typeof answeredFix>>;
}

export interface AgentEntry {
  agent_id: string;
  instance_url: string;
  host: string;
  mesh: string;
}

export interface InstanceStats {
  url: string;
  memory_rss_bytes: number;
  total_agents: number;
}

export interface CertificateFacts {
  url: string;
  subject: string;
  issuer: string;
  self_signed: boolean;
  valid_to: string;
  expired: boolean;
}

export interface Evidence {
  sources: Pick<EvidenceSources, 'production' | 'allowSelfSigned' | 'signaling' | 'limits'>;
  health(): Promise<InstanceHealth[]>;
  agents(): Promise<AgentEntry[]>;
  /** GET /config of the first instance that answers. */
  config(): Promise<ConfigResponse | null>;
  /** Agents' connection reports from every instance, each report once. */
  connections(): Promise<ConnectionInfo[]>;
  stats(): Promise<InstanceStats[]>;
  /** IF.witness query results, oldest first. */
  witness(query: Record<string, unknown>, since: string): Promise<Record<string, unknown>[]>;
  stun(): Promise<ProbeResult[]>;
  turn(): Promise<ProbeResult[]>;
  /** The certificates of the instances served over TLS. */
  certificates(): Promise<CertificateFacts[]>;
}

function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    p ??= f();
    return p;
  };
}

function tlsCertificate(url: string, timeoutMs: number, now: () => number): Promise<CertificateFacts | null> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({
      host: u.hostname,
      port: Number(u.port || 443),
      servername: /^[\d.]+$/.test(u.hostname) ? undefined : u.hostname,
      // We inspect the certificate; trusting it is not the question here.
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    const done = (v: CertificateFacts | null) => {
      socket.destroy();
      resolve(v);
    };
    socket.once('secureConnect', () => {
      const raw = socket.getPeerX509Certificate();
      if (!raw) return done(null);
      const c = new X509Certificate(raw.raw);
      done({
        url,
        subject: c.subject,
        issuer: c.issuer,
        self_signed: c.subject === c.issuer && c.checkIssued(c) && c.verify(c.publicKey),
        valid_to: new Date(c.validTo).toISOString(),
        expired: Date.parse(c.validTo) < now(),
      });
    });
    socket.once('timeout', () => done(null));
    socket.once('error', () => done(null));
  });
}

export function createEvidence(src: EvidenceSources): Evidence {
  const timeoutMs = src.probeTimeoutMs ?? 2_000;
  const clients = new Map(
    src.signaling.map((u) => [u, new SignalingClient(u, { dispatcher: src.dispatcher, timeoutMs: 3_000 })]),
  );
  const client = (url: string) => clients.get(url)!;
  const health = once(() =>
    Promise.all(
      src.signaling.map(async (url): Promise<InstanceHealth> => {
        try {
          const h = await client(url).health();
          return {
            url,
            up: h.status !== 'down',
            status: h.status,
            instance_id: h.instance_id,
            ...(h.cluster_id ? { cluster_id: h.cluster_id } : {}),
          };
        } catch (err) {
          return {
            url,
            up: false,
            status: null,
            error: (err as Error).message,
            ...(isUnverifiedCertificate(err) ? { unverified: true } : {}),
            ...(answeredFix(err) ? { answered: answeredFix(err)! } : {}),
          };
        }
      }),
    ),
  );
  const upInstances = async () => (await health()).filter((h) => h.up).map((h) => h.url);
  const config = once(async () => {
    for (const url of await upInstances()) {
      const c = await client(url)
        .config()
        .catch(() => undefined);
      if (c) return c;
    }
    return null;
  });
  return {
    sources: src,
    health,
    config,
    agents: once(async () => {
      const urls = await upInstances();
      const answers = await Promise.all(
        urls.map((u) =>
          client(u)
            .agents()
            .catch(() => ({ agents: [] })),
        ),
      );
      // The instance holding the agent's socket when it is one of ours, else the first that lists it.
      const byInstanceId = new Map((await health()).map((h) => [h.instance_id, h.url]));
      const firstLister = (id: string) =>
        urls.find((_, i) => answers[i]!.agents.some((a) => a.agent_id === id));
      return mergeAgents(answers).map(
        (a): AgentEntry => ({
          agent_id: a.agent_id,
          instance_url: byInstanceId.get(a.instance_id) ?? firstLister(a.agent_id) ?? urls[0]!,
          host: a.host,
          mesh: a.mesh,
        }),
      );
    }),
    connections: once(async () => {
      const urls = await upInstances();
      return mergeConnections(
        await Promise.all(
          urls.map((u) =>
            client(u)
              .connections()
              .catch(() => ({ connections: [] })),
          ),
        ),
      );
    }),
    stats: once(async () => {
      const out: InstanceStats[] = [];
      for (const url of await upInstances()) {
        const j = await client(url)
          .stats()
          .catch(() => undefined);
        if (j) out.push({ url, memory_rss_bytes: j.memory_rss_bytes, total_agents: j.total_agents });
      }
      return out;
    }),
    witness: async (query, since) => {
      const a = await runWitnessQuery({
        url: src.witness.url,
        token: src.witness.token,
        dispatcher: src.dispatcher,
        body: { query, time_range: { from: since, to: 'now' }, limit: 10_000 },
      });
      return a.results;
    },
    stun: once(async () => {
      const c = await config();
      return Promise.all((c?.stunServers ?? []).map((u) => probeStun(u, { timeoutMs, clock: src.clock })));
    }),
    turn: once(async () => {
      const c = await config();
      const cred = src.turn;
      return Promise.all(
        (c?.turnServers ?? []).map((u) =>
          cred
            ? probeTurnAllocate(u, cred, { timeoutMs, clock: src.clock })
            : Promise.resolve({ url: u, ok: false, rtt_ms: null, error: 'no TURN_USERNAME/TURN_PASSWORD' }),
        ),
      );
    }),
    certificates: once(async () => {
      const tls = src.signaling.filter((u) => u.startsWith('https://'));
      return (await Promise.all(tls.map((u) => tlsCertificate(u, timeoutMs, () => src.clock.now())))).filter(
        (c): c is CertificateFacts => c !== null,
      );
    }),
  };
}
