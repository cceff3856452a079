// `ifmesh troubleshoot …`: the runbook's four troubleshoot scripts, each a walk of a decision tree
// plus the script's extra checks that are not questions of the tree.
import type { LoadedConfig } from '../../config/load.js';
import { UsageError } from '../../errors.js';
import { scanProcesses } from '../../state/processes.js';
import { readSecrets } from '../../state/secrets.js';
import type { StateDir } from '../../state/state-dir.js';
import { currentRelease } from '../deploy/releases.js';
import { agentProcessName } from '../rollout/agents.js';
import type { OpContext } from '../shared.js';
import { createEvidence, type Evidence, type EvidenceSources } from './evidence.js';
import { type Finding, instanceFindings } from './findings.js';
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
  /** Beside the tree: the signaling instances it looked at that are not serving. */
  findings: Finding[];
}

/** A root cause on the tree's path, or an instance not serving: not a clean bill of health. */
export const faultFound = (r: TroubleshootReport): boolean =>
  r.walk.root_cause !== null || r.findings.length > 0;

/**
 * Where the evidence comes from: the flags' targets, TURN credentials from the config or the local
 * stack, and the agents the state's fleet deploys.
 */
export async function evidenceSources(
  targets: { signaling: string[]; witness: { url: string; token?: string | undefined } | undefined },
  loaded: LoadedConfig,
  state: StateDir,
  ctx: Pick<OpContext, 'dispatcher' | 'clock'>,
  limits: Partial<Limits> = {},
): Promise<EvidenceSources> {
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
    fleetAgents: await fleetAgents(state),
  };
}

/** The agents of the fleet's current release and every recorded agent process (up's, deploy's). */
export async function fleetAgents(state: StateDir): Promise<string[]> {
  // A release record that does not read takes nothing away: the other signs still count.
  const release = await currentRelease(state).catch(() => undefined);
  const prefix = agentProcessName('');
  const recorded = scanProcesses(state)
    .records.filter((r) => r.role === 'agents' && r.name.startsWith(prefix))
    .map((r) => r.name.slice(prefix.length));
  return [...new Set([...(release?.agents ?? []), ...recorded])];
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
  for (const who of ['agent', 'peer'] as const) {
    const id = subject[who];
    if (id) await requireKnown(id, who, sources.fleetAgents ?? [], ev);
  }
  const walk = await walkTree(KIND_TREE[kind], subject, ev);
  const extra = await extraChecks(kind, subject, ev);
  return { command: kind, subject, walk, extra, findings: instanceFindings(await ev.health()) };
}

/**
 * Every tree judges its agents by what they report, and an id nobody knows reads as one with no
 * fault (a mistyped id: "no fault found", or tree 1's "agent cannot register"). Known is: an agent of
 * the fleet (its current release or a recorded agent process: one that cannot register is what tree 1
 * diagnoses), registered on an instance, or heard of by the witness in the last hour. Anything else
 * is refused. When no instance answers, or the witness cannot be asked, nobody can say: the walk goes
 * on, and its own signaling check says so.
 */
async function requireKnown(id: string, who: 'agent' | 'peer', fleet: string[], ev: Evidence): Promise<void> {
  if (fleet.includes(id)) return;
  if (!(await ev.health()).some((h) => h.up)) return;
  if ((await ev.agents()).some((a) => a.agent_id === id)) return;
  const heard = await ev.witness({ agent_id: id }, '-1h').catch(() => undefined);
  if (heard === undefined || heard.length > 0) return;
  throw new UsageError(
    `${who} ${id} is not registered on any signaling instance, and the witness has nothing from it in the last hour`,
    "check the id: ifmesh agents list names the registered agents, ifmesh status the fleet's own (those are diagnosed even when down); an agent of another host: read its agent log there",
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
