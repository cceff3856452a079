// incident security: the failover guide's tree 4 (src/ops/troubleshoot/trees.ts, walked on real
// evidence), then what the incident does about its root cause. One signature failure is logged and
// watched; repeated failures from one peer block that peer on every signaling instance (the agents
// block API); failures across peers are a P1 and call for emergency key rotation. Other root causes
// of tree 4 (certificates, unauthorized attempts) get the tree's own actions as next steps.
import type { Dispatcher } from 'undici';
import type { Clock } from '../../util/clock.js';
import type { OpContext } from '../shared.js';
import { instancesReached, setBlocked } from '../troubleshoot/agents.js';
import { createEvidence } from '../troubleshoot/evidence.js';
import { walkTree } from '../troubleshoot/trees.js';
import { runWitnessQuery } from '../witness/query.js';
import type { TreeWalkRecord } from './store.js';

export type SecurityVerdict =
  | { kind: 'none' }
  | { kind: 'watch'; peer: string; failures: number }
  | { kind: 'block'; peer: string; failures: number }
  | { kind: 'widespread'; peers: string[]; failures: number }
  | { kind: 'other'; root_cause: string };

export interface SecurityEvidence {
  failures: { agent_id?: string; peer_id?: string; timestamp?: string; metadata?: Record<string, unknown> }[];
}

/** The window tree 4 reads signature failures over. */
export const SECURITY_WINDOW = '-1h';

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

/** What the incident does about a walk of tree 4, by its root cause id, the failures naming whom. */
export function verdictOf(rootCause: string | null | undefined, ev: SecurityEvidence): SecurityVerdict {
  const byPeer = new Map<string, number>();
  for (const f of ev.failures)
    byPeer.set(f.peer_id ?? 'unknown', (byPeer.get(f.peer_id ?? 'unknown') ?? 0) + 1);
  const [top, count] = [...byPeer].sort((a, b) => b[1] - a[1])[0] ?? ['unknown', 0];
  switch (rootCause) {
    case undefined:
    case null:
      return { kind: 'none' };
    case 'signature_failures_across_peers':
      return { kind: 'widespread', peers: [...byPeer.keys()], failures: ev.failures.length };
    case 'repeated_signature_failures_one_peer':
      return { kind: 'block', peer: top, failures: count };
    case 'single_signature_failure':
      return { kind: 'watch', peer: top, failures: count };
    default:
      return { kind: 'other', root_cause: rootCause };
  }
}

export interface SecurityOptions {
  signaling: string[];
  witness: { url: string; token?: string | undefined };
  production: boolean;
  allowSelfSigned: boolean;
  /** The signaling admin token, for the block (absent: the block is named, not done). */
  adminToken: string | undefined;
}

/** Walks tree 4 on the live mesh and the witness. */
export async function walkSecurity(
  o: SecurityOptions,
  ctx: { dispatcher: Dispatcher; clock: Clock },
): Promise<{ walk: TreeWalkRecord; verdict: SecurityVerdict }> {
  const evidence = createEvidence({
    signaling: o.signaling,
    witness: o.witness,
    turn: undefined,
    production: o.production,
    allowSelfSigned: o.allowSelfSigned,
    dispatcher: ctx.dispatcher,
    clock: ctx.clock,
  });
  const walk = await walkTree('security', {}, evidence);
  return { walk, verdict: verdictOf(walk.root_cause?.id, await fetchSecurityEvidence(o.witness, ctx)) };
}

/** Blocks `peer` on every instance; a failure is reported with the exact command to run. */
export async function blockPeer(
  o: SecurityOptions,
  peer: string,
  reason: string,
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
): Promise<{ ok: boolean; detail: string; command: string }> {
  const command = `ifmesh agents block ${peer} --reason '${reason}'`;
  if (!o.adminToken)
    return {
      ok: false,
      detail: `${peer} must be blocked, but there is no signaling admin token (set SIGNALING_ADMIN_TOKEN)`,
      command,
    };
  try {
    const r = await setBlocked({ signaling: o.signaling, token: o.adminToken }, 'block', peer, reason, ctx);
    return {
      ok: true,
      detail: `${peer} blocked on ${instancesReached(r.instances)} instance(s), ${r.disconnected} connection(s) closed`,
      command,
    };
  } catch (err) {
    return { ok: false, detail: `blocking ${peer} failed: ${(err as Error).message}`, command };
  }
}
