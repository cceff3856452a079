// What each kind of incident does once it is declared and its impact assessed: p1 restarts and
// investigates, p2 mitigates latency, security acts on tree 4, cert-expiry and turn-failure hand over.

import { answeredFix, UNVERIFIED_CERTIFICATE } from '../../clients/http.js';
import { httpUrlOf } from '../../clients/signaling.js';
import { scanProcesses } from '../../state/processes.js';
import { checkCertificate } from '../certs/check.js';
import { Supervisor } from '../fleet/supervisor.js';
import { WATCHDOG_NAME } from '../fleet/watchdog-process.js';
import type { MeshSample } from '../monitoring/collect.js';
import { DEFAULT_THRESHOLDS } from '../monitoring/thresholds.js';
import type { OpContext } from '../shared.js';
import { httpHealthy } from '../stack/stack.js';
import type { IncidentOptions } from './declare.js';
import type { IncidentLog } from './events.js';
import { investigate, restartDeadSignaling } from './p1.js';
import { currentBandwidth, pushBandwidth, quantifyLatency } from './p2.js';
import { blockPeer, walkSecurity } from './security.js';
import type { ActionTaken, Impact, IncidentKind, IncidentRecord } from './store.js';
import { checkTurnPorts, describeTurnCheck, shellQuote } from './turn.js';

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
  const restarts = await restartDeadSignaling(o.state, ctx);
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
    // An instance that answered with a certificate this command cannot verify, or with TLS on an
    // http:// URL, is not called silent: the fix is the CA (--ca FILE), the certificate or the URL,
    // not the network.
    const answered = step.sample.instances.filter((i) => !i.up && i.answered);
    const down = impact.instances
      .filter((i) => !i.up && !answered.some((u) => u.url === i.url))
      .map((i) => i.url);
    const byFix = new Map<string, string[]>();
    for (const i of answered) {
      const said =
        i.answered!.code === UNVERIFIED_CERTIFICATE
          ? `answered with a certificate this command cannot verify: ${i.answered!.fix}`
          : `answered with TLS on an http:// URL: ${i.answered!.fix}`;
      byFix.set(said, [...(byFix.get(said) ?? []), i.url]);
    }
    const said = [
      ...[...byFix].map(([what, urls]) => `${urls.join(', ')} ${what}`),
      ...(down.length
        ? [`no recorded instance is dead, but ${down.join(', ')} do not answer: network or load balancer`]
        : []),
      // The audit trail is down, not the mesh: failures cannot be counted, so the severity is a floor.
      ...(impact.failed_connections_5m === null
        ? [
            `the witness${witnessQ ? ` (${witnessQ.url})` : ''} does not answer: failed connections are unknown, so this classification may be too low, and events wait in each process's spool; bring it back (\`ifmesh status\`, its log), then \`ifmesh witness spool --flush\``,
          ]
        : []),
    ];
    act(
      'diagnosis',
      true,
      said.length
        ? said.join('; ')
        : 'every signaling instance is up: the issue may be network connectivity or the load balancer',
    );
  }
  // The runbook's check after its restart: is the service answering now?
  // One that answers with a certificate this command cannot verify, or with TLS on an http:// URL, is
  // listed as such, not as down.
  const health = await Promise.all(
    o.signaling.map((u) =>
      httpHealthy(u, ctx.dispatcher, { throwAnswered: true }).catch((err: unknown) => {
        const a = answeredFix(err);
        if (!a) throw err;
        return a.code === UNVERIFIED_CERTIFICATE ? ('unverified' as const) : ('tls' as const);
      }),
    ),
  );
  const up = health.filter((h) => h === true).length;
  const allUp = o.signaling.length > 0 && up === o.signaling.length;
  const listed = (what: boolean | 'unverified' | 'tls') => o.signaling.filter((_, i) => health[i] === what);
  act(
    'signaling_health',
    allUp,
    [
      `${up}/${o.signaling.length} signaling instances answer /health`,
      ...(listed(false).length ? [`down: ${listed(false).join(', ')}`] : []),
      ...(listed('unverified').length
        ? [`certificate not verified: ${listed('unverified').join(', ')}`]
        : []),
      ...(listed('tls').length ? [`TLS on an http:// URL (use https://): ${listed('tls').join(', ')}`] : []),
    ].join('; '),
  );
  // The runbook's `exit 0`: a restart brought the service back. Nothing restarted, or a restart that
  // left an instance down, is not a recovery: the team is engaged (step 5).
  const restored = restarts.length > 0 && restarts.every((r) => r.ok) && allUp;
  rec.auto_recovery = {
    restored,
    at: new Date(ctx.clock.now()).toISOString(),
    detail: restored
      ? `✓ Signaling server recovered: ${restarts.map((r) => r.name).join(', ')} restarted, ${up}/${o.signaling.length} answer /health`
      : restarts.length === 0
        ? `nothing to restart; ${up}/${o.signaling.length} signaling instances answer /health`
        : `restarted ${restarts.filter((r) => r.ok).length}/${restarts.length}; ${up}/${o.signaling.length} answer /health`,
  };
  if (o.investigate) {
    const inv = await investigate(
      { state: o.state, hosts: o.hosts, witness: witnessQ, signaling: o.signaling, turn: o.turn ?? [] },
      ctx,
    );
    rec.findings.investigation = inv;
    const deadTurn = inv.turn.filter((t) => !t.answering);
    act(
      'investigated',
      true,
      `resources, network (${inv.network.length} signaling/service port(s), ${inv.turn.length} TURN port(s)${deadTurn.length ? `, ${deadTurn.length} NOT answering` : ''}), witness errors, DNS and backends checked`,
    );
    if (deadTurn.length)
      rec.next_steps.push(
        `a TURN server does not answer (${deadTurn.map((t) => t.url).join(', ')}): ifmesh incident turn-failure --state-dir ${o.state.root}`,
      );
  }
  // The log of an instance this state started (up's signaling-1, deploy's deploy-signaling-1): the
  // one restarted, else the one that does not answer, else the first. Instances the operator
  // declared log on their own hosts.
  const scan = scanProcesses(o.state);
  const recorded = scan.records.filter((r) => r.role === 'signaling');
  // What p1 just restarted by hand, the supervisor restarts by itself, unless it is dead too (the
  // drill's instance stayed dead because its supervisor had been killed): said, with the command.
  const watchdog = scan.records.find((r) => r.name === WATCHDOG_NAME);
  if (
    watchdog &&
    new Supervisor(o.state, { clock: ctx.clock, owner: 'incident' }).running(watchdog.name) === undefined
  )
    rec.next_steps.push(
      `the supervisor is not running, so nothing restarts a service that dies: ifmesh supervise --detach --state-dir ${o.state.root}`,
    );
  // Left out of the restarts above: a record that no longer parses may be the instance that is down.
  for (const u of scan.unreadable)
    rec.next_steps.push(`${u.file} no longer parses (process ${u.name} was not checked): ${u.fix}`);
  const down = new Set(impact.instances.filter((i) => !i.up).map((i) => i.url));
  const logged =
    restarts[0]?.name ?? (recorded.find((r) => r.url && down.has(httpUrlOf(r.url))) ?? recorded[0])?.name;
  rec.next_steps.push(
    `ifmesh status --state-dir ${o.state.root}`,
    logged
      ? `ifmesh logs ${logged} -n 100 --state-dir ${o.state.root}`
      : "read the signaling instances' logs on their hosts (ifmesh started none from this state directory)",
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
  const up = impact.instances.filter((i) => i.up).map((i) => i.url);
  // What the cap replaces, for `incident resolve` to put back (unless an earlier P2 set it: that
  // one's own resolve restores the setting from before it).
  const before = await currentBandwidth(up, ctx);
  const pushes = await pushBandwidth(up, ctx);
  rec.findings.bandwidth = pushes;
  if (before) rec.findings.bandwidth_before = before;
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

/**
 * incident-response-p2-turn-failure.sh's part that is not the failover itself: which of the fleet's
 * TURN servers failed and which can replace it, then `ifmesh failover turn` (scenario A) named with
 * both, to run with --dry-run first.
 */
const turnFailure: Procedure = async (o, rec, step, ctx) => {
  const { act } = step;
  const servers = o.turn ?? [];
  const state = ` --state-dir ${shellQuote(o.state.root)}`;
  if (servers.length === 0) {
    act(
      'turn_servers_checked',
      false,
      'no TURN server in the fleet: TURN_SERVERS is unset and no coturn was started here',
    );
    rec.next_steps.push('set TURN_SERVERS (and TURN_USERNAME, TURN_PASSWORD), then `ifmesh config check`');
    return;
  }
  const checks = await checkTurnPorts(servers, {
    credentials: o.turnCredentials ?? null,
    allocate: true,
    clock: ctx.clock,
  });
  rec.findings.turn = checks;
  const failed = checks.filter((c) => !c.answering);
  const healthy = checks.filter((c) => c.answering);
  act(
    'turn_servers_checked',
    true,
    `${healthy.length}/${checks.length} TURN server(s) answer: ${checks.map(describeTurnCheck).join('; ')}`,
  );
  const failover = (failedUrl: string, replacement: string) =>
    `ifmesh failover turn --failed ${shellQuote(failedUrl)} --replacement ${shellQuote(replacement)}${state}`;
  if (failed.length === 0) {
    rec.next_steps.push(
      'every TURN server answers: the failure may be credentials or the path to it — ifmesh troubleshoot connection-timeout AGENT',
      `${failover('turn:FAILED-HOST:3478?transport=udp', 'turn:NEW-HOST:3478?transport=udp')} --dry-run   (once a server is known to have failed)`,
    );
  } else {
    for (const f of failed) {
      const replacement = healthy[0]?.url ?? 'turn:NEW-HOST:3478?transport=udp';
      rec.next_steps.push(`${failover(f.url, replacement)} --dry-run`, failover(f.url, replacement));
    }
    if (healthy.length === 0)
      rec.next_steps.push(
        'no TURN server of the fleet answers: name a new one as --replacement (turn:HOST:PORT)',
      );
  }
  rec.next_steps.push('ifmesh failover validate --scenario A   (after the failover)');
  act(
    'handed_over',
    true,
    `the TURN failover is \`ifmesh failover turn\` (the failover guide's scenario A): ${failed.length ? `replace ${failed.map((f) => f.url).join(', ')}${healthy.length ? ` with ${healthy[0]!.url}` : ''}` : 'no server failed the check'}; the commands are listed`,
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
    // Already a P1 (a security breach is, in the runbook's index): the failures across peers are
    // what calls for the emergency key rotation.
    act(
      'key_compromise_suspected',
      true,
      `signature failures from ${verdict.peers.length} peers (${verdict.peers.join(', ')}): rotate keys now`,
    );
    log.log('incident_mitigation', {
      action: 'key_rotation_required',
      metadata: { peers: verdict.peers, failures: verdict.failures },
    });
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
