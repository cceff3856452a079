// `ifmesh agents block|unblock|list`: the signaling admin API of every instance (one per cluster: a
// cluster pushes the change to all of its instances), so that whichever instance an agent reaches
// refuses it and whichever holds it disconnects it.
import { type SignalingClient, SignalingHttpError } from '../../clients/signaling.js';
import { rebindAgent as postRebind } from '../../clients/signaling-identity.js';
import type { LoadedConfig } from '../../config/load.js';
import { CheckFailedError, UnauthorizedError, UnreachableError, UsageError } from '../../errors.js';
import type {
  BlockEntryInfo as BlockEntry,
  BlockResponse,
  UnblockResponse,
} from '../../protocol/signaling-api.js';
import type { KeyBindingInfo, RebindResponse, RevocationInfo } from '../../protocol/signaling-identity.js';
import { readSecrets } from '../../state/secrets.js';
import type { StateDir } from '../../state/state-dir.js';
import { lookAtInstances, type PerCluster, perCluster } from '../fleet-views.js';
import { NO_INSTANCE_HINT, type OpContext } from '../shared.js';

export interface AdminTargets {
  signaling: string[];
  token: string;
}

export interface InstanceAnswer {
  url: string;
  ok: boolean;
  status: number | null;
  disconnected?: number;
  error?: string;
  /** The cluster's instances this answer stands for (the cluster applies the change everywhere). */
  cluster_id?: string | null;
  covers?: string[];
}

export interface BlockReport {
  action: 'block' | 'unblock';
  agent_id: string;
  entry: BlockEntry | null;
  disconnected: number;
  instances: InstanceAnswer[];
}

/** The signaling instances a change reached: a cluster's answer stands for each of its instances. */
export function instancesReached(instances: InstanceAnswer[]): number {
  return instances.reduce((n, i) => n + (i.ok ? (i.covers?.length ?? 1) : 0), 0);
}

/** SIGNALING_ADMIN_TOKEN from the config, else the local stack's generated token. */
export function adminToken(loaded: LoadedConfig, state: StateDir): string {
  const t = loaded.config.signalingAdminToken || readSecrets(state)?.admin_token;
  if (!t)
    throw new UsageError(
      'no signaling admin token',
      'set SIGNALING_ADMIN_TOKEN, or run against the local stack (ifmesh up)',
    );
  return t;
}

/** One call per cluster group (a cluster shares its block list through its pushes). */
async function perGroup<T>(
  t: AdminTargets,
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
  call: (c: SignalingClient) => Promise<T>,
): Promise<PerCluster<T>[]> {
  const opts = { adminToken: t.token, dispatcher: ctx.dispatcher, signal: ctx.signal, timeoutMs: 5_000 };
  const results = await perCluster(await lookAtInstances(t.signaling, opts), call);
  if (results.every((r) => !r.ok && r.error instanceof UnreachableError))
    throw new UnreachableError(`no signaling instance answers: ${t.signaling.join(', ')}`, NO_INSTANCE_HINT);
  for (const r of results) if (!r.ok && r.error instanceof UnauthorizedError) throw r.error;
  return results;
}

const httpStatus = (r: PerCluster<unknown>) =>
  r.ok ? 200 : r.error instanceof SignalingHttpError ? r.error.status : null;

export async function setBlocked(
  t: AdminTargets,
  action: 'block' | 'unblock',
  agentId: string,
  reason: string | undefined,
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
): Promise<BlockReport> {
  const answers = await perGroup<BlockResponse | UnblockResponse>(t, ctx, (c) =>
    action === 'block' ? c.block(agentId, reason) : c.unblock(agentId),
  );
  for (const a of answers)
    if (!a.ok && a.error instanceof SignalingHttpError && a.error.status === 400)
      throw new UsageError(a.error.message);
  if (action === 'unblock' && answers.every((a) => httpStatus(a) === 404 || httpStatus(a) === null))
    throw new CheckFailedError(
      `${agentId} is not blocked`,
      'ifmesh agents list shows the blocked identities',
      'not_blocked',
    );
  const instances: InstanceAnswer[] = answers.map((a) => ({
    url: a.url,
    // An instance sharing the state directory may already have seen the change: 404 on unblock is fine.
    ok: a.ok || (action === 'unblock' && httpStatus(a) === 404),
    status: httpStatus(a),
    ...(a.urls.length > 1 ? { cluster_id: a.cluster_id, covers: a.urls } : {}),
    ...(a.ok && 'disconnected' in a.value ? { disconnected: a.value.disconnected } : {}),
    ...(!a.ok && httpStatus(a) !== 404 ? { error: a.error.message } : {}),
  }));
  const entry = answers.find((a) => a.ok)?.value.entry ?? null;
  const report: BlockReport = {
    action,
    agent_id: agentId,
    entry,
    disconnected: instances.reduce((n, i) => n + (i.disconnected ?? 0), 0),
    instances,
  };
  if (instances.some((i) => !i.ok))
    throw Object.assign(
      new CheckFailedError(
        `${action} reached only ${instances.filter((i) => i.ok).length} of ${instances.length} signaling instances: ${instances
          .filter((i) => !i.ok)
          .map((i) => `${i.url} (${i.error ?? i.status})`)
          .join(', ')}`,
        `run ifmesh agents ${action} ${agentId} again once they answer`,
      ),
      { report },
    );
  return report;
}

export async function listBlocked(
  t: AdminTargets,
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
): Promise<{ blocked: BlockEntry[] }> {
  const answers = await perGroup(t, ctx, (c) => c.blocks());
  const seen = new Map<string, BlockEntry>();
  for (const a of answers) if (a.ok) for (const e of a.value.blocked) seen.set(e.agent_id, e);
  return { blocked: [...seen.values()] };
}

export interface BlockPlan {
  dry_run: true;
  action: 'block' | 'unblock';
  agent_id: string;
  reason: string | null;
  /** The instances that would be asked, and which of them hold the agent now. */
  instances: { url: string; reachable: boolean; holds_agent: boolean }[];
}

/** What block/unblock would do, read from every instance's /agents; changes nothing. */
export async function planBlock(
  t: AdminTargets,
  action: 'block' | 'unblock',
  agentId: string,
  reason: string | undefined,
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
): Promise<BlockPlan> {
  const opts = { dispatcher: ctx.dispatcher, signal: ctx.signal, timeoutMs: 5_000 };
  const looks = await lookAtInstances(t.signaling, opts);
  if (looks.every((l) => !l.health))
    throw new UnreachableError(`no signaling instance answers: ${t.signaling.join(', ')}`, NO_INSTANCE_HINT);
  const agents = await Promise.all(looks.map((l) => (l.health ? l.client.agents().catch(() => null) : null)));
  return {
    dry_run: true,
    action,
    agent_id: agentId,
    reason: reason ?? null,
    // In a cluster every instance lists every agent: the one holding it is the one whose id it names.
    instances: looks.map((l, i) => ({
      url: l.url,
      reachable: agents[i] !== null,
      holds_agent: Boolean(
        agents[i]?.agents.some((x) => x.agent_id === agentId && x.instance_id === l.health?.instance_id),
      ),
    })),
  };
}

export interface RebindReport {
  agent_id: string;
  binding: KeyBindingInfo;
  previous: KeyBindingInfo | null;
  revoked: RevocationInfo | null;
  disconnected: number;
  instances: InstanceAnswer[];
}

/**
 * `ifmesh agents rebind ID --key PUB`: binds the id to the key on every cluster group (a cluster, or
 * instances sharing a state directory, share the binding); the previous key is revoked and its
 * registration closed. Peers that pinned the previous key keep refusing the new one until restarted.
 */
export async function rebindAgent(
  t: AdminTargets,
  agentId: string,
  publicKey: string,
  reason: string | undefined,
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
): Promise<RebindReport> {
  const opts = { adminToken: t.token, dispatcher: ctx.dispatcher, signal: ctx.signal, timeoutMs: 5_000 };
  const answers = await perGroup<RebindResponse>(t, ctx, (c) =>
    postRebind(c.url, { agent_id: agentId, public_key: publicKey, ...(reason ? { reason } : {}) }, opts),
  );
  for (const a of answers) {
    if (a.ok || !(a.error instanceof SignalingHttpError)) continue;
    if (a.error.status === 400) throw new UsageError(a.error.message);
    if (a.error.status === 409)
      throw new CheckFailedError(
        a.error.message,
        'generate a new key for the agent (ifmesh keys generate --force)',
        'key_revoked',
      );
  }
  const instances: InstanceAnswer[] = answers.map((a) => ({
    url: a.url,
    ok: a.ok,
    status: httpStatus(a),
    ...(a.urls.length > 1 ? { cluster_id: a.cluster_id, covers: a.urls } : {}),
    ...(a.ok ? { disconnected: a.value.disconnected } : { error: a.error.message }),
  }));
  const done = answers.flatMap((a) => (a.ok ? [a.value] : []));
  const first = done.find((v) => v.revoked) ?? done[0];
  if (!first || instances.some((i) => !i.ok))
    throw new CheckFailedError(
      `rebind reached only ${instances.filter((i) => i.ok).length} of ${instances.length} signaling instances: ${instances
        .filter((i) => !i.ok)
        .map((i) => `${i.url} (${i.error ?? i.status})`)
        .join(', ')}`,
      `run ifmesh agents rebind ${agentId} again once they answer`,
    );
  return {
    agent_id: agentId,
    binding: first.binding,
    previous: first.previous,
    revoked: first.revoked,
    disconnected: instances.reduce((n, i) => n + (i.disconnected ?? 0), 0),
    instances,
  };
}
