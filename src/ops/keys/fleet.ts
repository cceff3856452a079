// `ifmesh rotate-keys` on a resolved fleet: the periodic rotation (--if-due, from cron) or a rotation
// now (scheduled or an emergency that declares its SEC- incident), each with its witness.
import type { Context } from '../../cli/context.js';
import type { LoadedConfig } from '../../config/load.js';
import { UnauthorizedError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Progress } from '../../ui/progress.js';
import type { Fleet } from '../fleet/fleet.js';
import { runIncident } from '../incident/declare.js';
import { configuredNotifiers } from '../incident/notify/send.js';
import { securityIncidentOptions } from './emergency.js';
import { type PeriodicReport, runPeriodicRotation } from './periodic.js';
import { type RotationPlan, type RotationReport, runRotation } from './rotate.js';

export interface FleetRotation {
  loaded: LoadedConfig;
  state: StateDir;
  fleet: Fleet;
  notify: boolean;
  /** Made once the rotation is known to start (a refusal comes first). */
  progress: () => Promise<Progress>;
  /** The agents answered so far, on the progress. */
  onProgress: (progress: Progress) => (completed: number, total: number) => void;
}

const witnessOf = (o: FleetRotation) =>
  o.fleet.witness.api_key
    ? { url: o.fleet.witness.url, apiKey: o.fleet.witness.api_key, state: o.state }
    : undefined;

/** --if-due: rotate only when the configuration's schedule says so. */
export async function rotateIfDue(
  o: FleetRotation & { timeoutMs: number; settleMs: number },
  ctx: Context,
): Promise<PeriodicReport> {
  const progress = await o.progress();
  return runPeriodicRotation(
    {
      state: o.state,
      signaling: o.fleet.signaling.map((x) => x.http),
      adminToken: o.fleet.admin_token,
      witness: witnessOf(o),
      enabled: o.loaded.config.enableSrtpKeyRotation,
      intervalMs: o.loaded.config.srtpKeyRotationIntervalMs,
      timeoutMs: o.timeoutMs,
      settleMs: o.settleMs,
      onProgress: o.onProgress(progress),
    },
    { notifiers: configuredNotifiers(o.loaded.config), notify: o.notify },
    ctx,
  ).finally(() => progress.close());
}

/** The rotation now, as planned; an emergency without an incident declares one. */
export async function rotateNow(
  o: FleetRotation & { plan: RotationPlan },
  ctx: Context,
): Promise<RotationReport> {
  const adminToken = o.fleet.admin_token;
  if (!adminToken)
    throw new UnauthorizedError(
      'no signaling admin token',
      `set SIGNALING_ADMIN_TOKEN, or run against the local stack (${o.state.adminToken})`,
    );
  const incident = securityIncidentOptions({
    loaded: o.loaded,
    fleet: o.fleet,
    state: o.state,
    notify: o.notify,
    witnessToken: ctx.env.WITNESS_QUERY_TOKEN || o.loaded.raw.WITNESS_QUERY_TOKEN || undefined,
  });
  const progress = await o.progress();
  return runRotation(
    o.state,
    o.plan,
    {
      adminToken,
      witness: witnessOf(o),
      onProgress: o.onProgress(progress),
      onStep: (line) => progress.info(line),
      declareIncident: async () => (await runIncident(incident, ctx)).id,
    },
    ctx,
  ).finally(() => progress.close());
}
