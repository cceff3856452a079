// Where the mesh is (the fleet view: flags > inventory > the state's records > configuration), `monitoring check`
// (two looks a sample window apart, so CPU can be a rate) and the data `ifmesh top` shows.

import type { LoadedConfig } from '../../config/load.js';
import { UnreachableError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import { loadFleet } from '../fleet/fleet.js';
import { NO_INSTANCE_HINT, type OpContext } from '../shared.js';
import { type CheckReport, evaluateMesh } from './check.js';
import { collectMesh, type MeshSample } from './collect.js';
import { sum } from './exposition.js';
import type { Thresholds } from './thresholds.js';

export interface MeshTargets {
  /** http(s) base URLs of the signaling instances. */
  signaling: string[];
  witness: { url: string; token?: string | undefined } | undefined;
  tlsCert: string | undefined;
}

export function resolveTargets(
  flags: { signaling?: string | undefined; witness?: string | undefined },
  env: Record<string, string | undefined>,
  loaded: LoadedConfig,
  state: StateDir,
): MeshTargets {
  const fleet = loadFleet(state, loaded, {
    signaling: flags.signaling ?? env.IFMESH_SIGNALING_URL,
    witness: flags.witness,
  });
  return {
    signaling: fleet.signaling.map((x) => x.http),
    witness: { url: fleet.witness.url, token: env.WITNESS_QUERY_TOKEN || undefined },
    tlsCert: loaded.config.signalingTlsCert,
  };
}

export interface CheckOptions {
  targets: MeshTargets;
  thresholds: Thresholds;
  /** Time between the two looks (CPU is a rate). */
  sampleMs: number;
}

export async function runCheck(
  o: CheckOptions,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
): Promise<CheckReport> {
  const collect = () =>
    collectMesh({
      signaling: o.targets.signaling,
      witness: o.targets.witness,
      now: () => ctx.clock.now(),
      dispatcher: ctx.dispatcher,
    });
  const first = await collect();
  if (first.instances.every((i) => !i.up))
    throw new UnreachableError(
      `no signaling instance answers: ${first.instances.map((i) => `${i.url} (${i.error})`).join(', ')}`,
      NO_INSTANCE_HINT,
    );
  await ctx.clock.sleep(o.sampleMs, ctx.signal);
  const second = await collect();
  return evaluateMesh(second, o.thresholds, { prev: first, tlsCert: o.targets.tlsCert });
}

export interface TopView {
  taken_at: string;
  instances: MeshSample['instances'];
  agents: { agent_id: string; instance: string; memory_mib: number | null; cpu: number | null }[];
  connections: {
    agent_id: string;
    peer_id: string;
    state: string;
    candidate_type: string | null;
    rtt_ms: number | null;
    loss_ratio: number | null;
  }[];
  messages: {
    sent: number;
    received: number;
    errors: number;
    sent_per_s: number | null;
    received_per_s: number | null;
  };
  turn: { relay_connections: number; connected: number; fallbacks_total: number };
  alerts: { id: string; metric: string; value: number | null; threshold: string; detail?: string }[];
}

/** What `top` shows of one look at the mesh; rates need the previous look. */
export function topView(
  cur: MeshSample,
  prev: MeshSample | undefined,
  t: Thresholds,
  tlsCert?: string,
): TopView {
  const s = cur.samples;
  const report = evaluateMesh(cur, t, { prev, tlsCert });
  const dt = prev ? (cur.taken_at - prev.taken_at) / 1000 : 0;
  const rate = (name: string) =>
    prev && dt > 0 ? Math.max(0, (sum(s, name) - sum(prev.samples, name)) / dt) : null;
  const cpuRow = new Map<string, number>();
  if (prev && dt > 0) {
    for (const x of s) {
      if (x.name !== 'webrtc_cpu_seconds_total' || !x.labels.agent_id) continue;
      const was = sum(prev.samples, x.name, { agent_id: x.labels.agent_id });
      if (x.value > was) cpuRow.set(x.labels.agent_id, (x.value - was) / dt);
    }
  }
  const connected = cur.connections.filter((c) => c.state === 'connected');
  return {
    taken_at: new Date(cur.taken_at).toISOString(),
    instances: cur.instances,
    agents: cur.agents
      .map((a) => {
        const mem = s.find((x) => x.name === 'webrtc_memory_bytes' && x.labels.agent_id === a.agent_id);
        return {
          agent_id: a.agent_id,
          instance: a.instance_id,
          memory_mib: mem ? Math.round((mem.value / 1024 / 1024) * 10) / 10 : null,
          cpu: cpuRow.has(a.agent_id) ? Math.round(cpuRow.get(a.agent_id)! * 100) / 100 : null,
        };
      })
      .sort((a, b) => a.agent_id.localeCompare(b.agent_id)),
    connections: cur.connections
      .map((c) => ({
        agent_id: c.agent_id,
        peer_id: c.peer_id,
        state: c.state,
        candidate_type: c.candidate_type,
        rtt_ms: c.rtt_ms === null ? null : Math.round(c.rtt_ms * 10) / 10,
        loss_ratio: c.loss_ratio ?? null,
      }))
      .sort((a, b) => `${a.agent_id} ${a.peer_id}`.localeCompare(`${b.agent_id} ${b.peer_id}`)),
    messages: {
      sent: sum(s, 'webrtc_messages_sent_total'),
      received: sum(s, 'webrtc_messages_received_total'),
      errors: sum(s, 'webrtc_message_errors_total'),
      sent_per_s: rate('webrtc_messages_sent_total'),
      received_per_s: rate('webrtc_messages_received_total'),
    },
    turn: {
      relay_connections: connected.filter((c) => c.candidate_type === 'relay').length,
      connected: connected.length,
      fallbacks_total: sum(s, 'webrtc_turn_fallback_total'),
    },
    alerts: report.rows
      .filter((r) => r.status === 'alert')
      .map((r) => ({
        id: r.id,
        metric: r.metric,
        value: r.value,
        threshold: r.threshold,
        ...(r.detail ? { detail: r.detail } : {}),
      })),
  };
}

export { collectMesh, type MeshSample };
