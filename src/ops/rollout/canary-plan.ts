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
import type { BuildRef, SourcePreview } from '../release/install.js';
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
  /** The candidate's code (src/ops/release/source.ts); undefined: the stable release's. */
  release: string | undefined;
  /** The candidate's name in `releases` (default: its version, else the stable one's name). */
  label?: string | undefined;
  /** Release records (and their installed code) kept. */
  keepReleases?: number;
  config: MeshConfig;
  cwd: string;
  progress: Progress;
  /** How long a moved agent may take to register. */
  registerTimeoutMs?: number;
}

/** How long a moved agent may take to register, unless --register-timeout says. */
export const DEFAULT_REGISTER_TIMEOUT_MS = 20_000;

/** Pure: agent counts per phase from steps such as 1,25%,100% (never shrinking, ending at all). */
export function phaseCounts(steps: string[], total: number, first: number | undefined): number[] {
  const counts: number[] = [];
  // A typo must not turn a canary into an unchecked rollout: steps that shrink, a zero step, or a
  // first step that already moves every agent (nothing would be analysed) are refused, not reshaped.
  let asked = 0;
  for (const [i, raw] of steps.entries()) {
    const s = raw.trim();
    const m = /^(\d+)(%?)$/.exec(s);
    if (!m) throw new UsageError(`--steps: "${s}" is not a count or a percentage`, 'e.g. --steps 1,25%,100%');
    // Capped at the fleet: "1,5,100%" on 3 agents is 1 then all, not a shrink at "100%".
    let n = Math.min(total, m[2] ? Math.ceil((Number(m[1]) / 100) * total) : Number(m[1]));
    if (Number(m[1]) === 0)
      throw new UsageError(`--steps: "${s}" moves no agent`, 'start at 1 (e.g. --steps 1,25%,100%)');
    if (n < asked)
      throw new UsageError(
        `--steps ${steps.join(',')}: "${s}" is fewer agents than the step before it`,
        'steps only grow, e.g. --steps 1,25%,100%',
      );
    asked = n;
    if (i === 0 && first !== undefined) n = first;
    if (i === 0 && total > 1 && n >= total)
      throw new UsageError(
        `${first !== undefined ? `--canary-agents ${first}` : `--steps ${steps.join(',')}`}: the first step moves all ${total} agents, so nothing would be analysed before the whole fleet runs the candidate`,
        'give a first step smaller than the fleet (e.g. --steps 1,25%,100%), or use deploy to move every agent at once',
      );
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
    | 'registerTimeoutMs'
    | 'set'
    | 'agentsDir'
    | 'label'
  >,
  stable: Release,
  candidateHash: string,
  now: number,
  rand: string,
  code: CanaryPlan['candidate']['code'] = codeOf(stable.build),
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
      // Named by its version when it runs other code than the stable release, else by the stable's
      // name and its configuration (a rollback by name must not find a failed canary under the
      // stable's own name).
      ref:
        o.label ??
        (code.version && code.id !== (stable.build?.id ?? null)
          ? code.version
          : // A name, not a history: the stable's own +config suffix is replaced, not stacked.
            `${stable.ref.replace(/\+config-[0-9a-f]{8}$/, '')}+config-${changesHash(o.set, o.agentsDir)}`),
      config_hash: candidateHash,
      changes: Object.fromEntries(
        Object.entries(o.set).map(([k, v]) => [k, isSecretKey(k) ? '[redacted]' : v]),
      ),
      agents_dir: o.agentsDir ?? null,
      code,
    },
    phases,
    register_timeout_ms: o.registerTimeoutMs ?? DEFAULT_REGISTER_TIMEOUT_MS,
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

/** The plan's view of a release's installed code (none: the running ifmesh's). */
export function codeOf(b: BuildRef | undefined): CanaryPlan['candidate']['code'] {
  return b
    ? { id: b.id, version: b.version, integrity: b.integrity, source: `${b.source.kind} ${b.source.spec}` }
    : { id: null, version: null, integrity: null, source: 'the running ifmesh' };
}

async function candidateSpecs(
  o: CanaryOptions,
  stable: Release,
  build: BuildRef | undefined,
): Promise<AgentSpec[]> {
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
    const { bin: _stableBin, ...rest } = s;
    return { ...rest, config, env: { ...s.env, ...o.set }, ...(build ? { bin: build.bin } : {}) };
  });
}

/**
 * The canary's plan and candidate. `code`: the installed `--release` the candidate runs (undefined:
 * the stable release's code), or in a dry run the preview of what would be installed.
 */
export async function planCanary(
  o: CanaryOptions,
  ctx: Pick<OpContext, 'clock'>,
  code?: { build: BuildRef } | { preview: SourcePreview },
) {
  const stable = await currentRelease(o.state);
  if (!stable)
    throw new UsageError(`no current release in ${o.state.root}`, 'deploy one first with `ifmesh deploy`');
  const build = code && 'build' in code ? code.build : stable.build;
  const specs = await candidateSpecs(o, stable, build);
  // A secret enters the hash salted with a value kept nowhere: a recorded config hash must not let
  // anyone test guesses of a TURN password against it.
  const salt = randomBytes(16);
  const blind = (k: string, v: string) =>
    isSecretKey(k) ? createHash('sha256').update(salt).update(v).digest('hex') : v;
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        stable: stable.config_hash,
        // The code is part of what changes: another release is another candidate.
        code:
          code && 'preview' in code ? (code.preview.integrity ?? code.preview.source.spec) : build?.integrity,
        specs: specs.map((s) => [
          s.config,
          Object.entries(s.env).map(([k, v]) => [k, blind(k, v)]),
          s.secret_env ?? {},
        ]),
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const planCode =
    code && 'preview' in code
      ? {
          id: code.preview.id,
          version: code.preview.version,
          integrity: code.preview.integrity,
          source: `${code.preview.source.kind} ${code.preview.source.path ?? code.preview.source.spec}`,
          action: code.preview.action,
        }
      : codeOf(build);
  const plan = buildCanaryPlan(o, stable, hash, ctx.clock.now(), randomBytes(2).toString('hex'), planCode);
  const sameCode = (planCode.integrity ?? null) === (stable.build?.integrity ?? null);
  if (sameCode && sameSpecs(specs, stable.agent_specs ?? [])) plan.candidate.unchanged = true;
  const candidate: Release = {
    ...stable,
    id: plan.canary_id,
    deployment_id: plan.deployment_id,
    ref: plan.candidate.ref,
    config_hash: hash,
    changes: plan.candidate.changes,
    created_at: new Date(ctx.clock.now()).toISOString(),
    agent_specs: specs,
    ...(build ? { build } : {}),
  };
  return { plan, stable, candidate };
}

/** Whether two releases start their agents alike: configs, environment (in any order), binary. */
function sameSpecs(a: AgentSpec[], b: AgentSpec[]): boolean {
  const key = (s: AgentSpec) =>
    JSON.stringify([
      s.agent_id,
      s.config,
      s.bin ?? null,
      Object.entries(s.env).sort(([x], [y]) => (x < y ? -1 : 1)),
      Object.entries(s.secret_env ?? {}).sort(([x], [y]) => (x < y ? -1 : 1)),
    ]);
  return a.length === b.length && a.every((s, i) => key(s) === key(b[i]!));
}

/**
 * A config-only candidate's name suffix: the same --set changes (secret values only as their key)
 * and agents directory give the same name in a dry run, a real run and on every stage.
 */
function changesHash(set: Record<string, string>, agentsDir: string | undefined): string {
  const shown = Object.entries(set)
    .map(([k, v]) => [k, isSecretKey(k) ? '[secret]' : v])
    .sort(([a], [b]) => (a! < b! ? -1 : 1));
  return createHash('sha256')
    .update(JSON.stringify({ shown, agentsDir: agentsDir ?? null }))
    .digest('hex')
    .slice(0, 8);
}
