// Scenario B's "Monitoring stabilization (5 minutes)" and "Log recovery", as recover-signaling-server.sh
// does them: every probe interval the recovered endpoint's /health is asked and the connections
// reported failed are counted (the guide's FAILED_CONNS, over every instance's /connections); at the
// end the witness is asked how many `connection_state_changed` failed events the window saw, and
// `signaling_server_recovery` is logged. The window runs on ctx.clock.
import { httpRequest } from '../../clients/http.js';
import type { WitnessEvent } from '../../protocol/witness.js';
import { queryWitness, type WitnessTarget } from '../events.js';
import type { OpContext } from '../shared.js';

/** The guide's line: more than 10 failed connections at one look is "a high number". */
export const FAILED_CONNECTIONS_LIMIT = 10;

export interface StabilisationReport {
  probes: number;
  probe_failures: number;
  /** Connections reported failed at each look (distinct agent → peer pairs over every instance). */
  failed_connections: number[];
  max_failed_connections: number;
  /** `connection_state_changed` with metadata.state failed the witness recorded over the window; null: it did not answer. */
  witness_failed_events: number | null;
  /** The newest of those, as the guide prints it for a person to look at. */
  last_failure: { agent_id?: string; peer_id?: string; timestamp?: string } | null;
}

type Ctx = Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>;

async function failedNow(bases: string[], ctx: Ctx): Promise<number> {
  const pairs = new Set<string>();
  for (const b of bases) {
    const r = await httpRequest(`${b}/connections`, {
      timeoutMs: 2_000,
      dispatcher: ctx.dispatcher,
      signal: ctx.signal,
    }).catch(() => undefined);
    const cs = (
      r?.json as { connections?: { agent_id: string; peer_id: string; state: string }[] } | undefined
    )?.connections;
    for (const c of cs ?? []) if (c.state === 'failed') pairs.add(`${c.agent_id}\u2192${c.peer_id}`);
  }
  return pairs.size;
}

async function witnessFailures(
  witness: WitnessTarget,
  windowMs: number,
  ctx: Ctx,
): Promise<Pick<StabilisationReport, 'witness_failed_events' | 'last_failure'>> {
  // Relative to the witness's own clock: the window just ended, so its last `windowMs` are the window.
  const seconds = Math.max(1, Math.ceil(windowMs / 1_000));
  const r = await queryWitness(
    witness,
    {
      query: { event: 'connection_state_changed', 'metadata.state': 'failed' },
      time_range: { from: `-${seconds}s`, to: 'now' },
    },
    ctx,
  ).catch(() => undefined);
  const results = r?.results as { agent_id?: string; peer_id?: string; timestamp?: string }[] | undefined;
  if (!results) return { witness_failed_events: null, last_failure: null };
  const last = results.at(-1);
  return {
    witness_failed_events: results.length,
    last_failure: last ? { agent_id: last.agent_id, peer_id: last.peer_id, timestamp: last.timestamp } : null,
  };
}

/** `healthy` is asked, and the failed connections counted, every `probeMs` for `windowMs`. */
export async function stabilise(
  o: {
    healthy: () => Promise<boolean>;
    windowMs: number;
    probeMs: number;
    /** http(s) bases whose /connections are counted. */
    signaling: string[];
    witness: WitnessTarget;
  },
  ctx: Ctx,
): Promise<StabilisationReport> {
  const r: StabilisationReport = {
    probes: 0,
    probe_failures: 0,
    failed_connections: [],
    max_failed_connections: 0,
    witness_failed_events: null,
    last_failure: null,
  };
  const end = ctx.clock.now() + o.windowMs;
  while (ctx.clock.now() < end) {
    await ctx.clock.sleep(Math.min(o.probeMs, end - ctx.clock.now()), ctx.signal);
    r.probes += 1;
    if (!(await o.healthy())) r.probe_failures += 1;
    const failed = await failedNow(o.signaling, ctx);
    r.failed_connections.push(failed);
    r.max_failed_connections = Math.max(r.max_failed_connections, failed);
  }
  Object.assign(r, await witnessFailures(o.witness, o.windowMs, ctx));
  return r;
}

/** The step line for the failed connections: the guide warns past 10 at one look. */
export function failedConnectionsStep(w: StabilisationReport): { ok: boolean; detail: string } {
  const witness =
    w.witness_failed_events === null
      ? 'the witness did not answer'
      : `${w.witness_failed_events} connection_state_changed failed in the witness over the window${
          w.last_failure ? ` (last: ${w.last_failure.agent_id} \u2192 ${w.last_failure.peer_id})` : ''
        }`;
  return {
    ok: w.max_failed_connections <= FAILED_CONNECTIONS_LIMIT,
    detail: `at most ${w.max_failed_connections} connections failed at one of ${w.probes} looks${
      w.max_failed_connections > FAILED_CONNECTIONS_LIMIT
        ? ` (more than ${FAILED_CONNECTIONS_LIMIT}: a high number, investigate)`
        : ''
    }; ${witness}`,
  };
}

/** The guide's closing event, with what the window measured. */
export function recoveryEvent(o: {
  failed: string;
  action: 'restart' | 'promote_backup';
  operator: string;
  window: StabilisationReport;
  extra: Record<string, unknown>;
}): WitnessEvent {
  return {
    event: 'signaling_server_recovery',
    metadata: {
      failed_server: o.failed,
      recovery_action: o.action,
      operator: o.operator,
      ...o.extra,
      stable: o.window.probe_failures === 0,
      health_probes: o.window.probes,
      health_probe_failures: o.window.probe_failures,
      max_failed_connections: o.window.max_failed_connections,
      witness_failed_events: o.window.witness_failed_events,
    },
  };
}
