// `ifmesh top`'s data: each look at the mesh made into the view, rates against the previous look.
import { UnreachableError } from '../../errors.js';
import { NO_INSTANCE_HINT, type OpContext } from '../shared.js';
import { collectMesh, type MeshSample } from './collect.js';
import { type MeshTargets, type TopView, topView } from './monitor.js';
import type { Thresholds } from './thresholds.js';

/** A function that looks once more and returns the view; no signaling instance answering is exit 3. */
export function topFeed(
  targets: MeshTargets,
  thresholds: Thresholds,
  ctx: Pick<OpContext, 'clock' | 'dispatcher'>,
): () => Promise<TopView> {
  let prev: MeshSample | undefined;
  return async () => {
    const cur = await collectMesh({
      signaling: targets.signaling,
      witness: targets.witness,
      now: ctx.clock.now,
      dispatcher: ctx.dispatcher,
    });
    if (cur.instances.every((i) => !i.up))
      throw new UnreachableError(
        `no signaling instance answers: ${cur.instances.map((i) => `${i.url} (${i.error})`).join(', ')}`,
        NO_INSTANCE_HINT,
      );
    const view = topView(cur, prev, thresholds, targets.tlsCert);
    prev = cur;
    return view;
  };
}

/** Without a terminal (or --json): one snapshot, two looks a refresh apart so rates have a value. */
export async function topSnapshot(
  next: () => Promise<TopView>,
  intervalMs: number,
  ctx: Pick<OpContext, 'clock' | 'signal'>,
): Promise<TopView> {
  await next();
  await ctx.clock.sleep(Math.min(intervalMs, 2_000), ctx.signal);
  return next();
}
