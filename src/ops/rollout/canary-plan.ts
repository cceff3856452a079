// The canary's plan (STYLE rule 3): pure over the stable release and the operator's changes, so
// `--dry-run` prints exactly what `canary` would do; canary.ts applies it.
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { MeshConfig } from '../../config/load.js';
import { UsageError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import { loadAgentConfigs } from '../deploy/deploy.js';
import { type AgentSpec, currentRelease, isSecretKey, type Release } from '../deploy/releases.js';
import type { Thresholds } from '../monitoring/thresholds.js';
import type { OpContext } from '../shared.js';
import { CANARY_GATES, DEFAULT_REQUIRED } from './analysis.js';
import type { CanaryPhase, CanaryPlan } from './canary-state.js';
import type { PromotionInput } from './promotion.js';

export interface CanaryOptions {
  state: StateDir;
  /** --stage: the environment `state` is of; undefined: the unnamed one. */
  stage: string | undefined;
  /** A stage with a promotion gate (production): the check against the stage before it. */
  promotion?: PromotionInput | undefined;
  canaryAgents: number | undefined;
  steps: string[];
  monitorMs: number;
  intervalMs: number;
  failureLimit: number;
  /** Checks in a row a gate may be unmeasurable (its source unreachable) before the analysis fails. */
  consecutiveErrorLimit: number;
  /** Gates whose window may end without a measurement (by default only rtt_p95_ms). */
  optionalGates: string[];
  thresholds: Thresholds;
  freezeOnFailure: boolean;
  set: Record<string, string>;
  agentsDir: string | undefined;
  release: string | undefined;
  config: MeshConfig;
  cwd: string;
  progress: Progress;
  /** How long a moved agent may take to register. */
  registerTimeoutMs?: number;
}

/** Pure: agent counts per phase from steps such as 1,25%,100% (never shrinking, ending at all). */
export function phaseCounts(steps: string[], total: number, first: number | undefined): number[] {
  const counts: number[] = [];
  for (const [i, raw] of steps.entries()) {
    const s = raw.trim();
    const m = /^(\d+)(%?)$/.exec(s);
    if (!m) throw new UsageError(`--steps: "${s}" is not a count or a percentage`, 'e.g. --steps 1,25%,100%');
    let n = m[2] ? Math.ceil((Number(m[1]) / 100) * total) : Number(m[1]);
    if (i === 0 && first !== undefined) n = first;
    n = Math.min(total, Math.max(n, counts.at(-1) ?? 1, 1));
    if (n !== counts.at(-1)) counts.push(n);
  }
  if (counts.at(-1) !== total) counts.push(total);
  return counts;
}

/** Pure: the canary's plan from the stable release and the candidate's specs. */
export function buildCanaryPlan(
  o: Pick<
    CanaryOptions,
    | 'stage'
    | 'canaryAgents'
    | 'steps'
    | 'monitorMs'
    | 'intervalMs'
    | 'failureLimit'
    | 'consecutiveErrorLimit'
    | 'optionalGates'
    | 'thresholds'
    | 'freezeOnFailure'
    | 'set'
    | 'agentsDir'
    | 'release'
  >,
  stable: Release,
  candidateHash: string,
  now: number,
  rand: string,
): CanaryPlan {
  const unknown = o.optionalGates.filter((g) => !(CANARY_GATES as readonly string[]).includes(g));
  if (unknown.length)
    throw new UsageError(
      `--optional-gate ${unknown.join(', ')}: no such gate`,
      `one of ${CANARY_GATES.join(', ')}`,
    );
  const ids = stable.agents;
  const counts = phaseCounts(o.steps, ids.length, o.canaryAgents);
  const phases: CanaryPhase[] = counts.map((n, i) => ({
    step: i === counts.length - 1 ? '100%' : `${n}/${ids.length}`,
    agents: ids.slice(0, n),
    new_agents: ids.slice(i === 0 ? 0 : counts[i - 1], n),
    analysis: i < counts.length - 1,
  }));
  const id = `canary-${new Date(now).toISOString().replace(/[:.]/g, '-')}-${rand}`;
  return {
    canary_id: id,
    deployment_id: id,
    stage: o.stage ?? null,
    promotion: null,
    stable: { id: stable.id, ref: stable.ref, config_hash: stable.config_hash },
    candidate: {
      id,
      ref: o.release ?? stable.ref,
      config_hash: candidateHash,
      changes: Object.fromEntries(
        Object.entries(o.set).map(([k, v]) => [k, isSecretKey(k) ? '[redacted]' : v]),
      ),
      agents_dir: o.agentsDir ?? null,
    },
    phases,
    analysis: {
      checks: Math.max(1, Math.floor(o.monitorMs / o.intervalMs)),
      interval_ms: o.intervalMs,
      failure_limit: o.failureLimit,
      consecutive_error_limit: o.consecutiveErrorLimit,
      required: DEFAULT_REQUIRED.filter((g) => !o.optionalGates.includes(g)),
      freeze_on_failure: o.freezeOnFailure,
      thresholds: o.thresholds,
    },
  };
}

async function candidateSpecs(o: CanaryOptions, stable: Release): Promise<AgentSpec[]> {
  if (!stable.agent_specs)
    throw new UsageError(
      `release ${stable.id} was recorded before ifmesh kept how its agents start`,
      'deploy once more with `ifmesh deploy`, then run the canary',
    );
  const byId = new Map<string, string>();
  if (o.agentsDir)
    for (const c of await loadAgentConfigs(o.agentsDir, o.cwd))
      byId.set(c.agentId, path.isAbsolute(c.file) ? c.file : path.join(o.cwd, c.file));
  return stable.agent_specs.map((s) => {
    const config = o.agentsDir ? byId.get(s.agent_id) : s.config;
    if (!config)
      throw new UsageError(
        `${o.agentsDir} has no config for agent ${s.agent_id} of the stable release`,
        'a canary changes the agents the release runs; add its config or use the stable directory',
      );
    return { ...s, config, env: { ...s.env, ...o.set } };
  });
}

export async function planCanary(o: CanaryOptions, ctx: Pick<OpContext, 'clock'>) {
  const stable = await currentRelease(o.state);
  if (!stable)
    throw new UsageError(`no current release in ${o.state.root}`, 'deploy one first with `ifmesh deploy`');
  const specs = await candidateSpecs(o, stable);
  // A secret enters the hash salted with a value kept nowhere: a recorded config hash must not let
  // anyone test guesses of a TURN password against it.
  const salt = randomBytes(16);
  const blind = (k: string, v: string) =>
    isSecretKey(k) ? createHash('sha256').update(salt).update(v).digest('hex') : v;
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        stable: stable.config_hash,
        specs: specs.map((s) => [
          s.config,
          Object.entries(s.env).map(([k, v]) => [k, blind(k, v)]),
          s.secret_env ?? {},
        ]),
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const plan = buildCanaryPlan(o, stable, hash, ctx.clock.now(), randomBytes(2).toString('hex'));
  const candidate: Release = {
    ...stable,
    id: plan.canary_id,
    deployment_id: plan.deployment_id,
    ref: plan.candidate.ref,
    config_hash: hash,
    changes: plan.candidate.changes,
    created_at: new Date(ctx.clock.now()).toISOString(),
    agent_specs: specs,
  };
  return { plan, stable, candidate };
}
