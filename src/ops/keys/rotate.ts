// Emergency SRTP key rotation (the runbook's emergency-srtp-key-rotation.sh): every signaling
// instance is asked to rotate its agents' keys (once per cluster: a cluster rotates all of its agents),
// then polled until every agent has answered `keys-rotated` or the timeout passes. Plan, then apply:
// the plan is what `--dry-run` prints.
import type { SignalingClient } from '../../clients/signaling.js';
import { UnauthorizedError, UnreachableError } from '../../errors.js';
import type { KeyRotationStatus } from '../../protocol/signaling-api.js';
import type { WitnessEvent } from '../../protocol/witness.js';
import { waitFor } from '../../util/wait.js';
import { logEvents, type WitnessTarget } from '../events.js';
import { lookAtInstances, perCluster } from '../fleet-views.js';
import type { OpContext } from '../shared.js';

export interface RotationPlan {
  /** http(s) base URLs of every signaling instance: each rotates the agents registered to it. */
  signaling: string[];
  reason: string;
  incident_id: string | null;
  /** An incident means a compromise: agents drop the old keys at once. */
  force_immediate: boolean;
  timeout_ms: number;
  events: string[];
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
  instances: InstanceRotation[];
}

export function planRotation(o: {
  signaling: string[];
  reason?: string | undefined;
  incidentId?: string | undefined;
  timeoutMs: number;
}): RotationPlan {
  const incident = o.incidentId ?? null;
  return {
    signaling: o.signaling,
    reason: o.reason ?? (incident ? 'security_incident' : 'scheduled'),
    incident_id: incident,
    force_immediate: incident !== null,
    timeout_ms: o.timeoutMs,
    events: [...(incident ? ['srtp_key_compromise_detected'] : []), 'srtp_key_rotated'],
  };
}

export async function applyRotation(
  plan: RotationPlan,
  o: {
    adminToken: string;
    witness?: WitnessTarget | undefined;
    onProgress?: (completed: number, total: number) => void;
    pollMs?: number;
  },
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
): Promise<RotationReport> {
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
      'start the mesh with `ifmesh up`, or pass --signaling URL',
    );
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
  const ok = done && instances.every((i) => !i.error);
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
          rotation_ids: live.map((l) => l.inst.rotation_id),
          status: ok ? 'completed' : 'incomplete',
        },
      } as WitnessEvent,
    ],
    ctx,
  );
  return { plan, dry_run: false, ok, ...t, pending, instances };
}
