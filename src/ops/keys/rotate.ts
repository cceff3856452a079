// Emergency SRTP key rotation (the runbook's emergency-srtp-key-rotation.sh): every signaling
// instance is asked to rotate its agents' keys, then polled until every agent has answered
// `keys-rotated` or the timeout passes. Plan, then apply: the plan is what `--dry-run` prints.
import { httpRequest } from '../../clients/http.js';
import { UnauthorizedError, UnreachableError } from '../../errors.js';
import type { WitnessEvent } from '../../protocol/witness.js';
import { waitFor } from '../../util/wait.js';
import { logEvents, type WitnessTarget } from '../events.js';
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

export interface InstanceRotation {
  url: string;
  rotation_id: string | null;
  completed: number;
  total: number;
  pending: string[];
  error?: string;
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

interface Status {
  status: string;
  rotation_id: string | null;
  completed: number;
  total: number;
  pending?: string[];
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
  const req = (url: string, body?: unknown) =>
    httpRequest(url, {
      method: body === undefined ? 'GET' : 'POST',
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { authorization: `Bearer ${o.adminToken}` },
      timeoutMs: 5_000,
      dispatcher: ctx.dispatcher,
      signal: ctx.signal,
    });
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
  const instances: InstanceRotation[] = [];
  for (const url of plan.signaling) {
    const started = await req(`${url}/admin/rotate-keys`, {
      rotation_reason: plan.reason,
      ...(plan.incident_id ? { incident_id: plan.incident_id } : {}),
      force_immediate: plan.force_immediate,
    }).catch((err: Error) => err);
    if (started instanceof Error) {
      instances.push({ url, rotation_id: null, completed: 0, total: 0, pending: [], error: started.message });
      continue;
    }
    if (started.status === 401 || started.status === 403)
      throw new UnauthorizedError(
        `${url} refused the admin token (${started.status})`,
        'set SIGNALING_ADMIN_TOKEN, or run against the local stack whose admin.token is in the state dir',
      );
    const j = started.json as { rotation_id?: string; total?: number } | undefined;
    if (started.status !== 200 || !j?.rotation_id) {
      instances.push({
        url,
        rotation_id: null,
        completed: 0,
        total: 0,
        pending: [],
        error: `HTTP ${started.status}`,
      });
      continue;
    }
    instances.push({ url, rotation_id: j.rotation_id, completed: 0, total: j.total ?? 0, pending: [] });
  }
  const live = instances.filter((i) => i.rotation_id);
  if (live.length === 0)
    throw new UnreachableError(
      `no signaling instance started a rotation: ${instances.map((i) => `${i.url} (${i.error})`).join(', ')}`,
      'start the mesh with `ifmesh up`, or pass --signaling URL',
    );
  const sum = () => ({
    completed: live.reduce((n, i) => n + i.completed, 0),
    total: live.reduce((n, i) => n + i.total, 0),
  });
  const poll = async () => {
    await Promise.all(
      live.map(async (inst) => {
        const a = await req(`${inst.url}/admin/key-rotation-status`).catch(() => undefined);
        const s = a?.json as Status | undefined;
        // Another rotation started since ours: ours is no longer what this instance reports.
        if (!s || s.rotation_id !== inst.rotation_id) return;
        inst.completed = s.completed;
        inst.total = s.total;
        inst.pending = s.pending ?? [];
      }),
    );
    const t = sum();
    o.onProgress?.(t.completed, t.total);
    return t.completed === t.total && live.every((i) => i.pending.length === 0);
  };
  const done = await waitFor(
    poll,
    { timeoutMs: plan.timeout_ms, intervalMs: o.pollMs ?? 500 },
    ctx.clock,
    ctx.signal,
  );
  const t = sum();
  const pending = live.flatMap((i) => i.pending).sort();
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
          rotation_ids: live.map((i) => i.rotation_id),
          status: ok ? 'completed' : 'incomplete',
        },
      } as WitnessEvent,
    ],
    ctx,
  );
  return { plan, dry_run: false, ok, ...t, pending, instances };
}
