// A deploy that fails after it touched a running fleet puts the release that ran before back, as a
// failed rollback does: the fleet's signaling instances running (on that release's code) and its
// agents on that release's specs. Stopping everything the deploy had (re)started — what a failed
// first deploy does — would take down a fleet that was serving before the deploy began: a dependency
// failing mid-deploy (Redis, say) would turn a deploy that could not finish into an outage.
import { httpUrlOf, SignalingClient } from '../../clients/signaling.js';
import type { Progress } from '../../ui/progress.js';
import { waitFor } from '../../util/wait.js';
import type { Supervisor } from '../fleet/supervisor.js';
import { rollSignaling } from '../release/roll.js';
import { agentProcessName, moveAgent, stopAgent, waitRegistered } from '../rollout/agents.js';
import type { OpContext } from '../shared.js';
import { type Release, releaseBin } from './releases.js';

export interface RestoreReport {
  release: string;
  ok: boolean;
  /** Instances that could not be started again (or put back on the release's code), with why. */
  instances_failed: string[];
  /** The release's agents not registered when the restore gave up waiting. */
  not_registered: string[];
  /** One sentence for the deploy's error: what runs now. */
  detail: string;
}

/** Answers /health at all: `ok`, or `degraded` (serving its agents, its shared registry away). */
async function serving(url: string, ctx: Pick<OpContext, 'dispatcher'>): Promise<boolean> {
  try {
    const h = await new SignalingClient(httpUrlOf(url), {
      timeoutMs: 1_000,
      dispatcher: ctx.dispatcher,
    }).health();
    return h.status === 'ok' || h.status === 'degraded';
  } catch {
    return false;
  }
}

export async function restorePrevious(
  o: {
    sup: Supervisor;
    previous: Release;
    /** The deploy's instances, and how one is started on a given entry script. */
    instances: { name: string; url: string }[];
    startInstance: (name: string, bin: string) => number;
    /** Agents of this deploy's plan: those the previous release does not have are stopped. */
    agents: string[];
    /** Process names of the agents this deploy restarted (on its specs): moved back. */
    moved: string[];
    progress: Progress;
    registerTimeoutMs: number;
  },
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
): Promise<RestoreReport> {
  const { sup, previous } = o;
  const bin = releaseBin(previous);
  const failed: string[] = [];
  o.progress.step('restore', 'running', `putting ${previous.ref} (${previous.id}) back`);
  // An instance this deploy stopped (or could not start) is started again. One that answers
  // "degraded" stays: it serves the agents it holds, and is whole again once its registry is back.
  for (const inst of o.instances) {
    if (sup.running(inst.name) !== undefined) continue;
    const pid = o.startInstance(inst.name, bin);
    const up = await waitFor(
      async () => sup.running(inst.name) === undefined || (await serving(inst.url, ctx)),
      { timeoutMs: 15_000, intervalMs: 100 },
      ctx.clock,
      ctx.signal,
    );
    if (!up || sup.running(inst.name) === undefined)
      failed.push(`${inst.name} (pid ${pid}) did not start: see ${sup.logFile(inst.name)}`);
  }
  // Instances the deploy moved onto other code go back onto the release's (one at a time).
  const roll = await rollSignaling(
    sup.state,
    o.instances.map((i) => i.name).filter((n) => sup.running(n) !== undefined),
    bin,
    `restored to ${previous.ref} (${previous.id}) after a failed deploy`,
    o.progress,
    ctx,
  );
  for (const i of roll.instances)
    if (i.outcome === 'failed')
      failed.push(`${i.name} (not back on ${previous.ref}: ${i.detail.split('\n')[0]})`);
  for (const id of o.agents.filter((a) => !previous.agents.includes(a))) await stopAgent(sup, id);
  // Agents the deploy had not reached yet still run the previous release: they are left alone.
  for (const spec of previous.agent_specs ?? []) {
    const name = agentProcessName(spec.agent_id);
    if (o.moved.includes(name) || sup.running(name) === undefined) await moveAgent(sup, spec);
  }
  const missing = await waitRegistered(
    sup,
    previous.agents,
    o.instances.map((i) => httpUrlOf(i.url)),
    o.registerTimeoutMs,
    ctx,
  );
  const ok = failed.length === 0 && missing.length === 0;
  const detail = ok
    ? `${previous.ref} (${previous.id}) restored: its instances and agents run and are registered`
    : `${previous.ref} (${previous.id}) put back, but ${[
        ...failed,
        ...(missing.length
          ? [`${missing.join(', ')} not registered within ${o.registerTimeoutMs / 1000} s (they keep trying)`]
          : []),
      ].join('; ')}`;
  o.progress.step('restore', ok ? 'ok' : 'fail', detail);
  return {
    release: previous.id,
    ok,
    instances_failed: failed,
    not_registered: missing,
    detail,
  };
}
