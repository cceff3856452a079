// Promotion between stages (docs/deploy.md "Stages"): the runbook canaries in staging, then rolls the same
// build into production. A canary in a gated stage (production) takes a release only when a canary
// promoted the same release in the stage before it (staging), unless --force. "The same release" is
// decided by sameRelease() alone, here: what a release is will grow (installed code, its integrity),
// and every check of it must grow with it.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PRODUCTION_STAGE } from '../../config/stage.js';
import { UsageError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import { listReleases, type Release } from '../deploy/releases.js';

/** For a stage, the stage a release must have been promoted in first. */
export const PROMOTION_GATES: Readonly<Record<string, string>> = { [PRODUCTION_STAGE]: 'staging' };

/** What a secret --set value is recorded as (canary-plan.ts): its key is compared, never its value. */
const REDACTED = '[redacted]';

/**
 * What makes two releases the same across stages: the code (`ref`, and `integrity` when both records
 * carry one: the same bytes whatever the ref says), and the configuration change the canary made
 * (its --set values; a secret's key only, since each stage keeps its own secret). Not the config hash:
 * each stage has its own env file, so the same release hashes differently in each.
 */
export interface ReleaseIdentity {
  ref: string;
  integrity?: string | undefined;
  /** The canary's --set changes, secrets as [redacted]; undefined: not recorded (an older record). */
  changes?: Record<string, string> | undefined;
}

/** Why `b` is not the same release as `a`, in a few words; undefined when it is. */
export function releaseDifference(a: ReleaseIdentity, b: ReleaseIdentity): string | undefined {
  if (a.integrity && b.integrity) {
    if (a.integrity !== b.integrity) return `its integrity ${b.integrity} is not ${a.integrity}`;
  } else if (a.ref !== b.ref) return `ref ${b.ref} is not ${a.ref}`;
  if (!a.changes || !b.changes) return 'its configuration changes were not recorded';
  const keys = [...new Set([...Object.keys(a.changes), ...Object.keys(b.changes)])].sort();
  const differ = keys.filter((k) => a.changes![k] !== b.changes![k]);
  if (differ.length)
    return `its --set ${differ.map((k) => (a.changes![k] === REDACTED || b.changes![k] === REDACTED ? `${k} (secret)` : k)).join(', ')} differ`;
  return undefined;
}

/** Whether `a` and `b` are the same release (releaseDifference says why not). */
export const sameRelease = (a: ReleaseIdentity, b: ReleaseIdentity): boolean =>
  releaseDifference(a, b) === undefined;

export const identityOf = (r: Release): ReleaseIdentity => ({
  ref: r.ref,
  integrity: r.build?.integrity,
  changes: r.changes,
});

/** The promotion check of a canary, as its plan records it. */
export interface PromotionCheck {
  stage: string;
  /** The stage the release had to pass. */
  requires: string;
  /** The release of `requires` it is the same as, promoted there; null when none is (then `forced`). */
  passed_as: string | null;
  forced: boolean;
}

export interface PromotionInput {
  /** The canary's stage, gated (a key of PROMOTION_GATES). */
  stage: string;
  /** The state directory of the stage it must have passed. */
  gateState: StateDir;
  force: boolean;
}

/** The stage `stage` must be promoted from; undefined when it is not gated. */
export const gateOf = (stage: string | undefined): string | undefined =>
  stage === undefined ? undefined : PROMOTION_GATES[stage];

/**
 * A gated canary's `--release VALUE` and `--set`: when VALUE is the id of a release of the gate stage,
 * that release's code (the tarball its installed build keeps, so the same bytes are installed here;
 * none: the stable release's code, as there), its name, and its non-secret --set changes (the
 * operator's own --set on top: a secret is each stage's own, so it is given again); else as given.
 */
export async function promotionSource<
  T extends { release: string | undefined; set: Record<string, string>; label?: string | undefined },
>(gateState: StateDir, o: T): Promise<T> {
  if (o.release === undefined) return o;
  const r = (await listReleases(gateState)).find((x) => x.id === o.release);
  if (!r) return o;
  const inherited = Object.entries(r.changes ?? {}).filter(([, v]) => v !== REDACTED);
  return {
    ...o,
    release: r.build ? keptTarball(gateState, r.build.id) : undefined,
    label: o.label ?? r.ref,
    set: { ...Object.fromEntries(inherited), ...o.set },
  };
}

/** The tarball an installed build was made from, kept in its directory. */
function keptTarball(state: StateDir, buildId: string): string {
  const dir = state.releaseBuild(buildId);
  const tgz = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.tgz')) : undefined;
  if (!tgz)
    throw new UsageError(
      `the code of ${buildId} is no longer installed in ${dir}`,
      'give its tarball or git ref to --release instead of the release id',
    );
  return path.join(dir, tgz);
}

/**
 * The promotion check: a release of the gate stage promoted there and the same as `candidate`; none
 * is a refusal (exit 2) saying how to get one, unless `force`.
 */
export async function checkPromotion(candidate: ReleaseIdentity, o: PromotionInput): Promise<PromotionCheck> {
  const requires = PROMOTION_GATES[o.stage]!;
  const promoted = (await listReleases(o.gateState)).filter((r) => r.outcome === 'promoted').reverse();
  const match = promoted.find((r) => sameRelease(identityOf(r), candidate));
  if (match || o.force) return { stage: o.stage, requires, passed_as: match?.id ?? null, forced: !match };
  const nearest = promoted.find((r) => r.ref === candidate.ref) ?? promoted[0];
  const why = nearest
    ? `${requires} promoted ${nearest.id} (${nearest.ref}), but ${releaseDifference(identityOf(nearest), candidate)}`
    : `no canary has promoted a release in ${requires}`;
  throw new UsageError(
    `release ${candidate.ref} did not pass ${requires}: ${why}`,
    `canary it there first (\`ifmesh canary --stage ${requires}\` with the same --release and --set), then pass the promoted release's id to --release; --force promotes it anyway`,
    'promotion_refused',
  );
}
