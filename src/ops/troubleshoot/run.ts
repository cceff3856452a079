// `ifmesh troubleshoot …`: the runbook's four troubleshoot scripts, each a walk of a decision tree
// plus the script's extra checks that are not questions of the tree.
import type { LoadedConfig } from '../../config/load.js';
import { UsageError } from '../../errors.js';
import { readSecrets } from '../../state/secrets.js';
import type { StateDir } from '../../state/state-dir.js';
import type { OpContext } from '../shared.js';
import { createEvidence, type Evidence, type EvidenceSources } from './evidence.js';
import { type AnyTreeId, LIMITS, type Limits, type Subject, type TreeWalk, walkTree } from './trees.js';

export type TroubleshootKind = 'connection-timeout' | 'packet-loss' | 'latency' | 'dtls' | 'memory';

export const KIND_TREE: Record<TroubleshootKind, AnyTreeId> = {
  'connection-timeout': 'connection-failure',
  'packet-loss': 'packet-loss',
  latency: 'high-latency',
  dtls: 'security',
  memory: 'memory',
};

export interface TroubleshootReport {
  command: TroubleshootKind;
  subject: Subject;
  walk: TreeWalk;
  /** The runbook script's checks that sit beside the tree (peer host, bandwidth, config). */
  extra: Record<string, unknown>;
}

/** Where the evidence comes from: the flags' targets, TURN credentials from the config or the local stack. */
export function evidenceSources(
  targets: { signaling: string[]; witness: { url: string; token?: string | undefined } | undefined },
  loaded: LoadedConfig,
  state: StateDir,
  ctx: Pick<OpContext, 'dispatcher' | 'clock'>,
  limits: Partial<Limits> = {},
): EvidenceSources {
  const c = loaded.config;
  const stackPass = readSecrets(state)?.turn_password;
  const turn =
    c.turnUsername && c.turnPassword
      ? { username: c.turnUsername, password: c.turnPassword }
      : stackPass
        ? { username: 'ifmesh', password: stackPass }
        : undefined;
  return {
    signaling: targets.signaling,
    witness: targets.witness ?? { url: c.witnessUrl },
    turn,
    production: c.productionMode,
    allowSelfSigned: c.allowSelfSignedCerts,
    dispatcher: ctx.dispatcher,
    limits,
    clock: ctx.clock,
  };
}

async function extraChecks(
  kind: TroubleshootKind,
  s: Subject,
  ev: Evidence,
): Promise<Record<string, unknown>> {
  if (kind === 'connection-timeout') {
    const peer = (await ev.agents()).find((a) => a.agent_id === s.peer);
    const config = await ev.config();
    return { peer_host: peer?.host ?? null, turn_fallback_timeout_ms: config?.turnFallbackTimeout ?? null };
  }
  if (kind === 'packet-loss') {
    const b = (await ev.witness({ event: 'bandwidth_update', agent_id: s.agent }, '-1m')).at(-1);
    const m = (b?.metadata ?? {}) as Record<string, unknown>;
    return { bytes_per_second: m.bytesPerSecond ?? null };
  }
  return {};
}

export async function troubleshoot(
  kind: TroubleshootKind,
  subject: Subject,
  sources: EvidenceSources,
): Promise<TroubleshootReport> {
  const ev = createEvidence(sources);
  if ((kind === 'latency' || kind === 'packet-loss') && subject.agent) await requireKnown(subject.agent, ev);
  const walk = await walkTree(KIND_TREE[kind], subject, ev);
  return { command: kind, subject, walk, extra: await extraChecks(kind, subject, ev) };
}

/**
 * The latency and packet-loss trees judge an agent by what it reports: one that no instance has
 * registered and the witness heard nothing from in the last hour has nothing to judge, and "no fault
 * found" would read as a clean bill of health (a mistyped id). Refused instead; when no instance
 * answers, the tree's own signaling check says so.
 */
async function requireKnown(agent: string, ev: Evidence): Promise<void> {
  if (!(await ev.health()).some((h) => h.up)) return;
  if ((await ev.agents()).some((a) => a.agent_id === agent)) return;
  const heard = await ev.witness({ agent_id: agent }, '-1h').catch(() => undefined);
  if (heard === undefined || heard.length > 0) return;
  throw new UsageError(
    `agent ${agent} is not registered on any signaling instance, and the witness has nothing from it in the last hour`,
    'check the id (ifmesh agents list names the registered ones); a deployed agent that is down: ifmesh status, ifmesh logs deploy-agent-ID',
  );
}

/** `--limit NAME=VALUE` flags (e.g. rttTurnMs=800) over the runbook's limits. */
export function parseLimits(flags: string[] | undefined): Partial<Limits> {
  const out: Partial<Limits> = {};
  for (const f of flags ?? []) {
    const [name, value] = f.split('=', 2) as [string, string | undefined];
    if (!(name in LIMITS))
      throw new UsageError(`--limit ${name}: unknown limit`, `one of ${Object.keys(LIMITS).join(', ')}`);
    const n = Number(value);
    if (value === undefined || value === '' || !Number.isFinite(n) || n < 0)
      throw new UsageError(`--limit ${f}: expected ${name}=<a number ≥ 0>`);
    out[name as keyof Limits] = n;
  }
  return out;
}
