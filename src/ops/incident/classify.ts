// The runbook's incident classification table (P1–P4), and the impact it is applied to.
import type { Dispatcher } from 'undici';
import type { MeshSample } from '../monitoring/collect.js';
import { collectMesh } from '../monitoring/collect.js';
import { runWitnessQuery } from '../witness/query.js';
import type { Severity } from './notify/types.js';
import type { Classification, Impact } from './store.js';

export const CLASSIFICATION: Record<Severity, Classification> = {
  P1: {
    level: 'P1',
    description: 'Total service down, >1000 agents affected',
    response_time: 'Immediate (< 5 min)',
    response_minutes: 5,
    escalation: 'VP Engineering + On-Call',
  },
  P2: {
    level: 'P2',
    description: 'Severe degradation, >100 agents affected',
    response_time: '15 minutes',
    response_minutes: 15,
    escalation: 'Engineering Lead + On-Call',
  },
  P3: {
    level: 'P3',
    description: 'Partial degradation, <100 agents affected',
    response_time: '1 hour',
    response_minutes: 60,
    escalation: 'Team Lead',
  },
  P4: {
    level: 'P4',
    description: 'Minor issues, no user impact',
    response_time: '24 hours',
    response_minutes: 1440,
    escalation: 'Ticket',
  },
};

/**
 * Every signaling instance down is a total outage whatever the counts say; its description says so
 * rather than the table's ">1000 agents affected", which a 3-agent fleet's operator would doubt.
 */
export function classify(i: Impact): Classification {
  const unread = i.instances.filter((x) => !x.up && x.answered).length;
  const noneUp = i.instances.length > 0 && i.instances.every((x) => !x.up);
  if (noneUp && unread === 0)
    return {
      ...CLASSIFICATION.P1,
      description: `Total service down: none of ${i.instances.length} signaling instance${i.instances.length === 1 ? '' : 's'} answers`,
    };
  const c =
    i.agents_affected > 1000
      ? CLASSIFICATION.P1
      : i.agents_affected > 100
        ? CLASSIFICATION.P2
        : i.agents_affected > 0
          ? CLASSIFICATION.P3
          : CLASSIFICATION.P4;
  // Instances that run but could not be read (this command's URL or CA) are no outage, and no count
  // of agents came from them: the level is a floor until they are read.
  return noneUp
    ? {
        ...c,
        description: `${c.description}; a floor: ${unread} signaling instance${unread === 1 ? '' : 's'} answered but could not be read (fix the URL or CA, then assess again)`,
      }
    : c;
}

const ORDER: Severity[] = ['P1', 'P2', 'P3', 'P4'];
export const higher = (a: Severity, b: Severity): Severity => (ORDER.indexOf(a) <= ORDER.indexOf(b) ? a : b);

/** The runbook's step 3: agents connected, failed connections in the last 5 minutes. */
export async function assessImpact(o: {
  signaling: string[];
  witness: { url: string; token?: string | undefined } | null;
  now: () => number;
  dispatcher: Dispatcher;
}): Promise<{ impact: Impact; sample: MeshSample }> {
  const sample = await collectMesh({
    signaling: o.signaling,
    now: o.now,
    dispatcher: o.dispatcher,
    timeoutMs: 3_000,
  });
  const affected = new Set<string>();
  for (const c of sample.connections) if (c.state === 'failed') affected.add(c.agent_id).add(c.peer_id);
  let failed: number | null = null;
  if (o.witness) {
    try {
      const a = await runWitnessQuery({
        url: o.witness.url,
        token: o.witness.token,
        dispatcher: o.dispatcher,
        timeoutMs: 3_000,
        body: {
          query: { event: 'connection_state_changed', 'metadata.state': 'failed' },
          time_range: { from: '-5m', to: 'now' },
          limit: 10_000,
        },
      });
      failed = a.results.length;
      for (const e of a.results as { agent_id?: string; peer_id?: string }[]) {
        if (e.agent_id) affected.add(e.agent_id);
        if (e.peer_id) affected.add(e.peer_id);
      }
    } catch {
      failed = null;
    }
  }
  return {
    sample,
    impact: {
      instances: sample.instances.map((x) => ({
        url: x.url,
        up: x.up,
        ...(x.answered ? { answered: true as const } : {}),
      })),
      agents_connected: new Set(sample.agents.map((a) => a.agent_id)).size,
      connections: sample.connections.length,
      failed_connections_5m: failed,
      agents_affected: affected.size,
    },
  };
}
