// `ifmesh agents block|unblock|list`: the signaling admin API of every instance, so that whichever
// instance an agent reaches refuses it and whichever holds it disconnects it.
import { httpRequest } from '../../clients/http.js';
import type { LoadedConfig } from '../../config/load.js';
import { readStackSecrets } from '../../config/local-stack.js';
import { CheckFailedError, UnauthorizedError, UnreachableError, UsageError } from '../../errors.js';
import type { BlockEntry } from '../../services/signaling/block-list.js';
import type { OpContext } from '../shared.js';

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
}

export interface BlockReport {
  action: 'block' | 'unblock';
  agent_id: string;
  entry: BlockEntry | null;
  disconnected: number;
  instances: InstanceAnswer[];
}

/** SIGNALING_ADMIN_TOKEN from the config, else the local stack's generated token. */
export function adminToken(loaded: LoadedConfig, stateDir: string): string {
  const t = loaded.config.signalingAdminToken || readStackSecrets(stateDir)?.admin_token;
  if (!t)
    throw new UsageError(
      'no signaling admin token',
      'set SIGNALING_ADMIN_TOKEN, or run against the local stack (ifmesh up)',
    );
  return t;
}

async function call(
  t: AdminTargets,
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
) {
  return Promise.all(
    t.signaling.map(async (url) => {
      try {
        const r = await httpRequest(`${url}${path}`, {
          method,
          ...(body ? { body: JSON.stringify(body) } : {}),
          headers: { authorization: `Bearer ${t.token}` },
          dispatcher: ctx.dispatcher,
          signal: ctx.signal,
          timeoutMs: 5_000,
        });
        return { url, status: r.status as number | null, json: r.json as Record<string, any> | undefined };
      } catch (err) {
        return { url, status: null, json: undefined, error: (err as Error).message };
      }
    }),
  );
}

function judge(answers: Awaited<ReturnType<typeof call>>): void {
  if (answers.every((a) => a.status === null))
    throw new UnreachableError(
      `no signaling instance answers: ${answers.map((a) => a.url).join(', ')}`,
      'start the mesh with `ifmesh up`, or pass --signaling URL',
    );
  if (answers.some((a) => a.status === 401))
    throw new UnauthorizedError('signaling refused the admin token', 'check SIGNALING_ADMIN_TOKEN');
}

export async function setBlocked(
  t: AdminTargets,
  action: 'block' | 'unblock',
  agentId: string,
  reason: string | undefined,
  ctx: Pick<OpContext, 'dispatcher' | 'signal'>,
): Promise<BlockReport> {
  const answers =
    action === 'block'
      ? await call(t, ctx, 'POST', '/admin/block', { agent_id: agentId, reason })
      : await call(t, ctx, 'POST', '/admin/unblock', { agent_id: agentId });
  judge(answers);
  const bad = answers.find((a) => a.status === 400);
  if (bad) throw new UsageError(String(bad.json?.error?.message ?? 'signaling refused the request'));
  if (action === 'unblock' && answers.every((a) => a.status === 404 || a.status === null))
    throw new CheckFailedError(
      `${agentId} is not blocked`,
      'ifmesh agents list shows the blocked identities',
      'not_blocked',
    );
  const instances: InstanceAnswer[] = answers.map((a) => ({
    url: a.url,
    // An instance sharing the state directory may already have seen the change: 404 on unblock is fine.
    ok: a.status === 200 || (action === 'unblock' && a.status === 404),
    status: a.status,
    ...(a.json?.disconnected !== undefined ? { disconnected: a.json.disconnected as number } : {}),
    ...('error' in a && a.error ? { error: a.error } : {}),
  }));
  const entry = (answers.find((a) => a.status === 200)?.json?.entry as BlockEntry | undefined) ?? null;
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
  const answers = await call(t, ctx, 'GET', '/admin/blocks');
  judge(answers);
  const seen = new Map<string, BlockEntry>();
  for (const a of answers) for (const e of (a.json?.blocked ?? []) as BlockEntry[]) seen.set(e.agent_id, e);
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
  const answers = await call(t, ctx, 'GET', '/agents');
  judge(answers);
  return {
    dry_run: true,
    action,
    agent_id: agentId,
    reason: reason ?? null,
    instances: answers.map((a) => ({
      url: a.url,
      reachable: a.status === 200,
      holds_agent: ((a.json?.agents ?? []) as { agent_id: string; instance_id: string }[]).some(
        (x) => x.agent_id === agentId,
      ),
    })),
  };
}
