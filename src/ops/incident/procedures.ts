// What each kind of incident does once it is declared and its impact assessed: p1 restarts and
// investigates, p2 mitigates latency, security acts on tree 4, cert-expiry and turn-failure hand over.
import { checkCertificate } from '../certs/check.js';
import type { MeshSample } from '../monitoring/collect.js';
import { DEFAULT_THRESHOLDS } from '../monitoring/thresholds.js';
import type { OpContext } from '../shared.js';
import { httpHealthy } from '../stack/stack.js';
import type { IncidentOptions } from './declare.js';
import type { IncidentLog } from './events.js';
import { investigate, restartDeadSignaling } from './p1.js';
import { pushBandwidth, quantifyLatency } from './p2.js';
import { blockPeer, walkSecurity } from './security.js';
import type { ActionTaken, Impact, IncidentKind, IncidentRecord } from './store.js';

export interface Step {
  act: (action: string, ok: boolean, detail: string) => ActionTaken;
  log: IncidentLog;
  witness: { url: string; token?: string | undefined } | null;
  impact: Impact;
  sample: MeshSample;
}

type Procedure = (o: IncidentOptions, rec: IncidentRecord, step: Step, ctx: OpContext) => Promise<void>;

const p1: Procedure = async (o, rec, step, ctx) => {
  const { act, log, witness: witnessQ, impact } = step;
  const restarts = await restartDeadSignaling(o.stateDir, ctx);
  rec.findings.restarts = restarts;
  for (const r of restarts) {
    act('signaling_server_restarted', r.ok, `${r.name}: ${r.detail}`);
    if (r.ok)
      log.log('incident_auto_recovery', {
        action: 'signaling_server_restarted',
        metadata: { instance: r.name, pid: r.pid, port: r.port },
      });
  }
  if (restarts.length === 0) {
    const down = impact.instances.filter((i) => !i.up).map((i) => i.url);
    act(
      'diagnosis',
      true,
      down.length
        ? `no recorded instance is dead, but ${down.join(', ')} do not answer: network or load balancer`
        : 'every signaling instance is up: the issue may be network connectivity or the load balancer',
    );
  }
  // The runbook's check after its restart: is the service answering now?
  const health = await Promise.all(o.signaling.map((u) => httpHealthy(u, ctx.dispatcher)));
  const up = health.filter(Boolean).length;
  act(
    'signaling_health',
    o.signaling.length > 0 && up === o.signaling.length,
    `${up}/${o.signaling.length} signaling instances answer /health${up === o.signaling.length ? '' : `; down: ${o.signaling.filter((_, i) => !health[i]).join(', ')}`}`,
  );
  if (o.investigate) {
    rec.findings.investigation = await investigate(
      { stateDir: o.stateDir, hosts: o.hosts, witness: witnessQ },
      ctx,
    );
    act('investigated', true, 'resources, network, witness errors, DNS and backends checked');
  }
  rec.next_steps.push(
    `ifmesh status --state-dir ${o.stateDir}`,
    `ifmesh logs ${restarts[0]?.name ?? 'signaling-1'} -n 100 --state-dir ${o.stateDir}`,
  );
};

const p2: Procedure = async (_o, rec, step, ctx) => {
  const { act, log, witness: witnessQ, impact, sample } = step;
  const f = await quantifyLatency(sample, witnessQ, ctx);
  rec.findings.latency = f;
  act(
    'impact_quantified',
    true,
    `${f.high_latency.pairs} high-latency connections (> 500 ms) of ${f.total_connections}; TURN share ${f.turn.share === null ? 'unknown' : `${Math.round(f.turn.share * 100)} %`}`,
  );
  const pushes = await pushBandwidth(
    impact.instances.filter((i) => i.up).map((i) => i.url),
    ctx,
  );
  rec.findings.bandwidth = pushes;
  for (const p of pushes) act('bandwidth_adaptation_enabled', p.ok, `${p.instance}: ${p.detail}`);
  if (pushes.length === 0) act('bandwidth_adaptation_enabled', false, 'no signaling instance answers');
  log.log('incident_mitigation', {
    action: 'bandwidth_adaptation_enabled',
    metadata: { instances: pushes.filter((p) => p.ok).length, maxBitrateMbps: 1 },
  });
  if (f.turn_dominant)
    rec.next_steps.push('more than half of the connections are on TURN: ifmesh incident turn-failure');
  rec.next_steps.push('ifmesh top', 'ifmesh verify --message-exchange');
};

const certExpiry: Procedure = async (o, rec, step, ctx) => {
  const { act } = step;
  // Hands over to `ifmesh certs`: the certificate checked here, its rotation named to run.
  const cert = o.tlsCert;
  if (!cert) act('certificate_checked', false, 'SIGNALING_TLS_CERT is not set: no certificate to check');
  else {
    try {
      const c = await checkCertificate({
        cert,
        key: o.tlsKey,
        warnDays: DEFAULT_THRESHOLDS.certificate_days,
        now: ctx.clock.now(),
      });
      rec.findings.certificate = c;
      act(
        'certificate_checked',
        c.status === 'ok',
        `${c.subject}: ${c.status}, ${c.days_left} days left (not after ${c.not_after})${c.problems.length ? `; ${c.problems.join('; ')}` : ''}`,
      );
    } catch (err) {
      act('certificate_checked', false, (err as Error).message);
    }
  }
  const files = `--cert ${cert ?? '<SIGNALING_TLS_CERT>'}${o.tlsKey ? ` --key ${o.tlsKey}` : ''}`;
  rec.next_steps.push(
    `ifmesh certs rotate ${files} --dry-run`,
    `ifmesh certs rotate ${files}   (renews, then restarts signaling one instance at a time)`,
    `ifmesh certs check ${files}`,
  );
  act('handed_over', true, 'certificate rotation is `ifmesh certs rotate`: the commands to run are listed');
};

const turnFailure: Procedure = async (o, rec, step, _ctx) => {
  const { act } = step;
  rec.next_steps.push(
    'ifmesh top   (which pairs are on relay)',
    'ifmesh monitoring check   (TURN share, connection failures)',
    `ifmesh status --state-dir ${o.stateDir}   (coturn processes)`,
    'edit TURN_SERVERS to drop the failed server, then `ifmesh config check`',
    `ifmesh up --state-dir ${o.stateDir}   (restarts a dead local coturn)`,
  );
  act(
    'handed_over',
    true,
    'the TURN failover procedure is not in ifmesh yet: the commands to run are listed',
  );
};

/** Tree 4 and what to do about its root cause. */
const security: Procedure = async (o, rec, io, ctx) => {
  const { act, log } = io;
  if (!io.witness) {
    act('tree_walked', false, 'no witness to read the security events from: set IF_WITNESS_ENDPOINT');
    return;
  }
  const so = {
    signaling: o.signaling,
    witness: io.witness,
    production: o.production ?? false,
    allowSelfSigned: o.allowSelfSigned ?? false,
    adminToken: o.adminToken,
  };
  let walked: Awaited<ReturnType<typeof walkSecurity>>;
  try {
    walked = await walkSecurity(so, ctx);
  } catch (err) {
    act('tree_walked', false, `the evidence could not be read: ${(err as Error).message}`);
    return;
  }
  const { walk, verdict } = walked;
  rec.tree = walk;
  act('tree_walked', true, walk.root_cause ? walk.root_cause.title : 'no security event in the last hour');
  if (verdict.kind === 'watch') {
    act('watching', true, `${verdict.peer}: ${verdict.failures} failure logged; a repeat blocks it`);
    log.log('security_event_watched', { peer_id: verdict.peer, metadata: { failures: verdict.failures } });
  }
  if (verdict.kind === 'block') {
    const reason = `incident ${rec.id}: ${verdict.failures} signature failures`;
    const b = await blockPeer(so, verdict.peer, reason, ctx);
    act('agent_blocked', b.ok, b.detail);
    if (b.ok)
      log.log('incident_agent_blocked', { peer_id: verdict.peer, metadata: { failures: verdict.failures } });
    else rec.next_steps.push(b.command);
  }
  if (verdict.kind === 'widespread') {
    rec.severity = 'P1';
    act(
      'escalated',
      true,
      `signature failures from ${verdict.peers.length} peers (${verdict.peers.join(', ')}): escalated to P1`,
    );
    log.log('incident_escalated', { metadata: { to: 'P1', peers: verdict.peers } });
    rec.next_steps.push(`ifmesh rotate-keys --incident-id ${rec.id}`);
  }
  if (verdict.kind === 'other') rec.next_steps.push(...walk.actions);
};

export const KIND_PROCEDURES: Record<IncidentKind, Procedure> = {
  p1,
  p2,
  security,
  'cert-expiry': certExpiry,
  'turn-failure': turnFailure,
};
