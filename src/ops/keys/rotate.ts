// Key rotation (the runbook's emergency-srtp-key-rotation.sh, steps 1–5): an emergency rotation
// without an incident declares a SEC- security incident first (step 1); every signaling instance is
// asked to rotate its agents' keys (once per cluster: a cluster rotates all of its agents), then
// polled until every agent has answered `keys-rotated` or the timeout passes (steps 2–3); after the
// settle time (10 s, on the context's clock) the failed connections are counted (step 4). Plan, then
// apply: the plan is what `--dry-run` prints.
import type { SignalingClient } from '../../clients/signaling.js';
import { UnauthorizedError, UnreachableError } from '../../errors.js';
import type { KeyRotationStatus } from '../../protocol/signaling-api.js';
import type { WitnessEvent } from '../../protocol/witness.js';
import type { StateDir } from '../../state/state-dir.js';
import { formatDuration } from '../../ui/units.js';
import { waitFor } from '../../util/wait.js';
import { currentRelease } from '../deploy/releases.js';
import { logEvents, type WitnessTarget } from '../events.js';
import { lookAtInstances, perCluster } from '../fleet-views.js';
import { listIncidents } from '../incident/store.js';
import { collectMesh } from '../monitoring/collect.js';
import { type KeyRotationStep, type StepMarks, withProcedure } from '../procedure.js';
import { NO_INSTANCE_HINT, type OpContext } from '../shared.js';
import { writeRotationRecord } from './schedule.js';

/** The runbook's step 4: `sleep 10` after the rotation, then count failed connections. */
export const SETTLE_MS = 10_000;

export interface RotationPlan {
  /** http(s) base URLs of every signaling instance: each rotates the agents registered to it. */
  signaling: string[];
  reason: string;
  incident_id: string | null;
  /** A suspected compromise (--emergency or --incident-id): agents drop the old keys at once. */
  emergency: boolean;
  /** Emergency without an incident id: `incident security` declares one (SEC-…) first. */
  declare_incident: boolean;
  force_immediate: boolean;
  timeout_ms: number;
  /** How long after the rotation the failed connections are counted (the runbook's 10 s). */
  settle_ms: number;
  events: string[];
}

/** The runbook's step 4: connections in state "failed" once the mesh has settled. */
export interface Stability {
  settle_ms: number;
  /** Failed connections before the rotation (null: not measured), so old failures are not blamed on it. */
  failed_before: number | null;
  /** Failed connections after the settle time; null when no instance answered (not a pass). */
  failed_connections: number | null;
  failed: { agent_id: string; peer_id: string }[];
  unreachable: string[];
}

/** One rotation: one per standalone instance, one per cluster (`covers` names its instances). */
export interface InstanceRotation {
  url: string;
  rotation_id: string | null;
  completed: number;
  total: number;
  pending: string[];
  error?: string;
  cluster_id?: string | null;
  covers?: string[];
}

export interface RotationReport {
  plan: RotationPlan;
  dry_run: boolean;
  ok: boolean;
  completed: number;
  total: number;
  /** Agents that did not answer `keys-rotated` in time. */
  pending: string[];
  /**
   * Agents of the fleet's current release that no instance had registered when the rotation began
   * (stopped, blocked, partitioned): no instance asked them, so they keep their old keys.
   */
  not_registered: string[];
  instances: InstanceRotation[];
  /** The SEC- incident declared for this rotation (emergency without --incident-id). */
  incident_declared: string | null;
  stability: Stability | null;
  /** What a person should do next, when anything. */
  next_steps: string[];
}

export function planRotation(o: {
  signaling: string[];
  reason?: string | undefined;
  incidentId?: string | undefined;
  /** A suspected compromise; implied by an incident id. */
  emergency?: boolean | undefined;
  timeoutMs: number;
  settleMs?: number | undefined;
}): RotationPlan {
  const incident = o.incidentId ?? null;
  const emergency = Boolean(o.emergency) || incident !== null;
  const declare = emergency && incident === null;
  return {
    signaling: o.signaling,
    reason: o.reason ?? (emergency ? 'security_incident' : 'scheduled'),
    incident_id: incident,
    emergency,
    declare_incident: declare,
    force_immediate: emergency,
    timeout_ms: o.timeoutMs,
    settle_ms: o.settleMs ?? SETTLE_MS,
    events: [
      ...(declare ? ['incident_declared'] : []),
      ...(emergency ? ['srtp_key_compromise_detected'] : []),
      'srtp_key_rotated',
    ],
  };
}

/** Failed connections of the whole mesh now (each report once, instances of a cluster merged). */
async function failedConnections(
  signaling: string[],
  ctx: Pick<OpContext, 'clock' | 'dispatcher'>,
): Promise<Omit<Stability, 'settle_ms' | 'failed_before'> & { registered: string[] }> {
  const mesh = await collectMesh({ signaling, now: ctx.clock.now, dispatcher: ctx.dispatcher });
  const unreachable = mesh.instances.filter((i) => !i.up).map((i) => i.url);
  if (mesh.instances.every((i) => !i.up))
    return { failed_connections: null, failed: [], unreachable, registered: [] };
  const failed = mesh.connections
    .filter((c) => c.state === 'failed')
    .map((c) => ({ agent_id: c.agent_id, peer_id: c.peer_id }));
  return {
    failed_connections: failed.length,
    failed,
    unreachable,
    registered: mesh.agents.map((a) => a.agent_id),
  };
}

export async function applyRotation(
  planned: RotationPlan,
  o: {
    adminToken: string;
    witness?: WitnessTarget | undefined;
    onProgress?: (completed: number, total: number) => void;
    onStep?: (line: string) => void;
    pollMs?: number;
    /** Declares the security incident (`incident security`) and returns its id; needed when the plan
     * says declare_incident. */
    declareIncident?: () => Promise<string>;
    /** Where the last rotation is recorded for the periodic schedule (src/ops/keys/schedule.ts). */
    state?: StateDir | undefined;
    /** The journal of the procedure running it (rotate-keys, failover keys): its boundaries. */
    journal?: StepMarks<KeyRotationStep> | undefined;
    /**
     * The agents the fleet deploys, each of which must be registered to be rotated; default: the
     * current release's in `state` (none when it does not read).
     */
    deployedAgents?: string[] | undefined;
  },
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
): Promise<RotationReport> {
  let plan = planned;
  let declared: string | null = null;
  if (plan.declare_incident) {
    if (!o.declareIncident) throw new Error('an emergency rotation without an incident id must declare one');
    declared = await o.declareIncident();
    plan = { ...plan, incident_id: declared };
    o.onStep?.(`security incident ${declared} declared`);
    // Kept, so a run after this one is killed answers the same incident instead of declaring another.
    o.journal?.step('incident_declared', { incident_id: declared });
  }
  const startedAt = ctx.clock.now();
  const before = await failedConnections(plan.signaling, ctx).catch(() => undefined);
  const registered = new Set(before?.registered ?? []);
  const deployed =
    o.deployedAgents ??
    (o.state ? (await currentRelease(o.state).catch(() => undefined))?.agents : undefined);
  // No instance answered the look: the rotation below fails on its own, naming them.
  const answered = before !== undefined && before.failed_connections !== null;
  const not_registered = answered ? (deployed ?? []).filter((id) => !registered.has(id)).sort() : [];
  if (not_registered.length)
    o.onStep?.(`not registered, so not rotated: ${not_registered.join(', ')} (they keep their old keys)`);
  if (plan.incident_id)
    await logEvents(
      o.witness,
      'rotate-keys',
      [
        {
          event: 'srtp_key_compromise_detected',
          incident_id: plan.incident_id,
          severity: 'critical',
          action: 'emergency_key_rotation_initiated',
          metadata: { reason: plan.reason },
        } as WitnessEvent,
      ],
      ctx,
    );
  const looks = await lookAtInstances(plan.signaling, {
    adminToken: o.adminToken,
    timeoutMs: 5_000,
    dispatcher: ctx.dispatcher,
    signal: ctx.signal,
  });
  // Instances of one cluster keep one rotation (its targets are every agent of the cluster): a
  // second POST to another of them would start a second rotation that supersedes the first.
  const started = await perCluster(looks, async (c) => ({
    client: c,
    answer: await c.rotateKeys({
      rotation_reason: plan.reason,
      ...(plan.incident_id ? { incident_id: plan.incident_id } : {}),
      force_immediate: plan.force_immediate,
    }),
  }));
  for (const s of started) if (!s.ok && s.error instanceof UnauthorizedError) throw s.error;
  const instances: InstanceRotation[] = [];
  const live: { inst: InstanceRotation; client: SignalingClient; others: SignalingClient[] }[] = [];
  for (const s of started) {
    const group = s.urls.length > 1 ? { cluster_id: s.cluster_id, covers: s.urls } : {};
    if (!s.ok) {
      instances.push({
        url: s.url,
        rotation_id: null,
        completed: 0,
        total: 0,
        pending: [],
        ...group,
        error: s.error.message,
      });
      continue;
    }
    const { client, answer } = s.value;
    const inst: InstanceRotation = {
      url: s.url,
      rotation_id: answer.rotation_id,
      completed: 0,
      total: answer.total,
      pending: [],
      ...group,
    };
    instances.push(inst);
    const others = looks.filter((l) => s.urls.includes(l.url) && l.url !== s.url).map((l) => l.client);
    live.push({ inst, client, others });
  }
  if (live.length === 0)
    throw new UnreachableError(
      `no signaling instance started a rotation: ${instances.map((i) => `${i.url} (${i.error})`).join(', ')}`,
      NO_INSTANCE_HINT,
    );
  o.journal?.step('rotation_started');
  const sum = () => ({
    completed: live.reduce((n, l) => n + l.inst.completed, 0),
    total: live.reduce((n, l) => n + l.inst.total, 0),
  });
  const poll = async () => {
    await Promise.all(
      live.map(async ({ inst, client, others }) => {
        // The cluster keeps the status: any of its instances answers for the rotation.
        let s: KeyRotationStatus | undefined;
        for (const c of [client, ...others]) {
          s = await c.keyRotationStatus().catch(() => undefined);
          if (s) break;
        }
        // Another rotation started since ours: ours is no longer what this instance reports.
        if (!s || s.rotation_id !== inst.rotation_id) return;
        inst.completed = s.completed;
        inst.total = s.total;
        inst.pending = s.status === 'idle' ? [] : s.pending;
      }),
    );
    const t = sum();
    o.onProgress?.(t.completed, t.total);
    return t.completed === t.total && live.every((l) => l.inst.pending.length === 0);
  };
  const done = await waitFor(
    poll,
    { timeoutMs: plan.timeout_ms, intervalMs: o.pollMs ?? 500 },
    ctx.clock,
    ctx.signal,
  );
  const t = sum();
  const pending = live.flatMap((l) => l.inst.pending).sort();
  o.journal?.step('agents_rotated');
  // Step 4: give the agents the runbook's 10 s to re-establish with their new keys, then look.
  o.onStep?.(`waiting ${formatDuration(plan.settle_ms)}, then counting failed connections`);
  await ctx.clock.sleep(plan.settle_ms, ctx.signal);
  const { registered: _after, ...after } = await failedConnections(plan.signaling, ctx);
  const stability: Stability = {
    settle_ms: plan.settle_ms,
    failed_before: before?.failed_connections ?? null,
    ...after,
  };
  o.journal?.step('settled');
  const ok =
    done &&
    instances.every((i) => !i.error) &&
    stability.failed_connections === 0 &&
    not_registered.length === 0;
  const next: string[] = [];
  if (stability.failed_connections === null)
    next.push('no signaling instance answered after the rotation: ifmesh status; ifmesh monitoring check');
  else if (stability.failed_connections > 0) {
    // The runbook's "ACTION: Monitor and investigate reconnections".
    const f = stability.failed[0]!;
    next.push(
      `${stability.failed_connections} connections failed after rotation: monitor and investigate reconnections`,
      `ifmesh troubleshoot connection-timeout ${f.agent_id} ${f.peer_id}`,
      'ifmesh top',
    );
  }
  if (pending.length)
    next.push(`agents that did not rotate: ${pending.join(', ')} (ifmesh logs, or restart them)`);
  if (not_registered.length)
    next.push(
      `${not_registered.join(', ')} of the current release ${not_registered.length === 1 ? 'was' : 'were'} not registered and kept the old keys: bring ${not_registered.length === 1 ? 'it' : 'them'} back (ifmesh status; ifmesh agents list; unblock a blocked one), then ifmesh rotate-keys again`,
    );
  if (declared) next.push(`ifmesh incident show ${declared}`, `ifmesh incident resolve ${declared}`);
  await logEvents(
    o.witness,
    'rotate-keys',
    [
      {
        event: 'srtp_key_rotated',
        ...(plan.incident_id ? { incident_id: plan.incident_id } : {}),
        metadata: {
          reason: plan.reason,
          completed: t.completed,
          total: t.total,
          pending,
          not_registered,
          rotation_ids: live.map((l) => l.inst.rotation_id),
          failed_connections: stability.failed_connections,
          status: ok ? 'completed' : 'incomplete',
        },
      } as WitnessEvent,
    ],
    ctx,
  );
  if (o.state)
    writeRotationRecord(o.state, {
      at: new Date(startedAt).toISOString(),
      reason: plan.reason,
      incident_id: plan.incident_id,
      ok,
      ...t,
      pending,
      not_registered,
      failed_connections: stability.failed_connections,
      rotation_ids: live.map((l) => l.inst.rotation_id),
    });
  return {
    plan,
    dry_run: false,
    ok,
    ...t,
    pending,
    not_registered,
    instances,
    incident_declared: declared,
    stability,
    next_steps: next,
  };
}

/**
 * `rotate-keys` as one journaled run (src/ops/procedure.ts). An emergency run after one that was
 * killed once it had declared its security incident answers that incident (while it is open)
 * instead of declaring a second one for the same compromise.
 */
export function runRotation(
  state: StateDir,
  planned: RotationPlan,
  o: Omit<Parameters<typeof applyRotation>[1], 'state' | 'journal'>,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher' | 'env'>,
): Promise<RotationReport> {
  const rerun = `ifmesh rotate-keys${planned.emergency ? (planned.incident_id ? ` --incident-id ${planned.incident_id}` : ' --emergency') : ''}`;
  return withProcedure(
    state,
    'rotate-keys',
    { summary: `key rotation (${planned.reason})`, rerun },
    ctx,
    async (journal) => {
      const kept = journal.previous?.data.incident_id;
      const open =
        typeof kept === 'string' &&
        listIncidents(state).some((i) => i.id === kept && i.status !== 'resolved');
      const plan =
        planned.declare_incident && open
          ? { ...planned, incident_id: kept, declare_incident: false }
          : planned;
      if (plan !== planned) {
        journal.step('incident_declared', { incident_id: kept });
        o.onStep?.(`answering security incident ${kept}, declared by the rotation that was interrupted`);
      }
      return applyRotation(plan, { ...o, state, journal }, ctx);
    },
  );
}
