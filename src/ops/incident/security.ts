// Security events (the failover guide's tree 4, on the witness's signature failures): one failure is
// logged and watched; repeated failures from one peer block that peer (`ifmesh agents block`); failures
// from several peers are a P1 and call for emergency key rotation. The signature branch of tree 4 is
// walked here on the evidence src/ops/troubleshoot/trees.ts's `security` tree reads, with its root
// cause ids and in its TreeWalk shape, until that module is in main and the incident walks it instead.
import type { OpContext } from '../shared.js';
import { runWitnessQuery } from '../witness/query.js';
import type { TreeWalkRecord } from './store.js';

/** Failures from one peer within the window that make it a repeat offender (tree 4's "one peer"). */
export const REPEAT_FAILURES = 2;
export const SECURITY_WINDOW = '-1h';

export type SecurityVerdict =
  | { kind: 'none' }
  | { kind: 'watch'; peer: string; failures: number }
  | { kind: 'block'; peer: string; failures: number }
  | { kind: 'widespread'; peers: string[]; failures: number };

export interface SecurityEvidence {
  failures: { agent_id?: string; peer_id?: string; timestamp?: string; metadata?: Record<string, unknown> }[];
}

export async function fetchSecurityEvidence(
  witness: { url: string; token?: string | undefined },
  ctx: Pick<OpContext, 'dispatcher'>,
): Promise<SecurityEvidence> {
  const a = await runWitnessQuery({
    url: witness.url,
    token: witness.token,
    dispatcher: ctx.dispatcher,
    timeoutMs: 3_000,
    body: {
      query: { event: 'signature_verification_failed' },
      time_range: { from: SECURITY_WINDOW, to: 'now' },
      limit: 10_000,
    },
  });
  return { failures: a.results as SecurityEvidence['failures'] };
}

/**
 * What the incident does about a walk of tree 4, by its root cause id (the ids of
 * src/ops/troubleshoot/trees.ts), with the failures grouped by peer naming whom.
 */
export function verdictOf(rootCause: string | null | undefined, ev: SecurityEvidence): SecurityVerdict {
  const byPeer = new Map<string, number>();
  for (const f of ev.failures)
    byPeer.set(f.peer_id ?? 'unknown', (byPeer.get(f.peer_id ?? 'unknown') ?? 0) + 1);
  const [top, count] = [...byPeer].sort((a, b) => b[1] - a[1])[0] ?? ['unknown', 0];
  switch (rootCause) {
    case 'signature_failures_across_peers':
      return { kind: 'widespread', peers: [...byPeer.keys()], failures: ev.failures.length };
    case 'repeated_signature_failures_one_peer':
      return { kind: 'block', peer: top, failures: count };
    case 'single_signature_failure':
      return { kind: 'watch', peer: top, failures: count };
    default:
      return { kind: 'none' };
  }
}

/** Pure: the walk and the verdict from recorded evidence. */
export function walkSecurity(ev: SecurityEvidence): { walk: TreeWalkRecord; verdict: SecurityVerdict } {
  const walk = walkSignatures(ev);
  return { walk, verdict: verdictOf(walk.root_cause?.id, ev) };
}

function walkSignatures(ev: SecurityEvidence): TreeWalkRecord {
  const byPeer = new Map<string, number>();
  for (const f of ev.failures) {
    const peer = f.peer_id ?? 'unknown';
    byPeer.set(peer, (byPeer.get(peer) ?? 0) + 1);
  }
  const counts = Object.fromEntries([...byPeer].sort((a, b) => b[1] - a[1]));
  const path: TreeWalkRecord['path'] = [
    {
      question: `Signature verification failures in the witness over the last hour?`,
      evidence: { failures: ev.failures.length },
      answer: ev.failures.length ? `yes, ${ev.failures.length}` : 'no',
    },
  ];
  if (ev.failures.length === 0)
    return {
      tree: 'security',
      path,
      root_cause: null,
      actions: ['nothing to do: no security event recorded'],
    };
  path.push({
    question: 'Do the failures come from a single peer?',
    evidence: { failures_by_peer: counts },
    answer: byPeer.size === 1 ? `yes, ${[...byPeer.keys()][0]}` : `no, ${byPeer.size} peers`,
  });
  if (byPeer.size > 1) {
    return {
      tree: 'security',
      path,
      root_cause: {
        id: 'signature_failures_across_peers',
        title: 'Signature failures across peers: possible MITM attack',
      },
      actions: ['escalate to P1', 'emergency key rotation of every agent', 'block the peers once rotated'],
    };
  }
  const [peer, failures] = [...byPeer][0]!;
  path.push({
    question: `Has ${peer} failed ${REPEAT_FAILURES} times or more?`,
    evidence: { failures, threshold: REPEAT_FAILURES },
    answer: failures >= REPEAT_FAILURES ? 'yes' : 'no',
  });
  if (failures >= REPEAT_FAILURES)
    return {
      tree: 'security',
      path,
      root_cause: {
        id: 'repeated_signature_failures_one_peer',
        title: `${peer} signs with a key that is not the one it registered (wrong or stolen key)`,
      },
      actions: [`block ${peer} at signaling`, `re-issue ${peer}'s key before unblocking it`],
    };
  return {
    tree: 'security',
    path,
    root_cause: { id: 'single_signature_failure', title: `an isolated signature failure from ${peer}` },
    actions: ['logged; watch for repeats (`ifmesh incident security` again blocks a repeat offender)'],
  };
}
