// Starting the state's supervisor process (`ifmesh supervise`), as `up` and `deploy` do.
import path from 'node:path';
import { packageRoot } from '../../paths.js';
import { readProcess } from '../../state/processes.js';
import { waitFor } from '../../util/wait.js';
import type { OpContext } from '../shared.js';
import type { StartResult } from './restart.js';
import type { Supervisor } from './supervisor.js';

export const WATCHDOG_NAME = 'supervisor';

/** Starts `ifmesh supervise` for the state dir unless it runs; waits until it says it watches. */
export async function ensureWatchdog(
  sup: Supervisor,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'tls'>,
  /** The configuration it reads the witness from (deploy's env file as IFMESH_CONFIG, --set values). */
  env: Record<string, string> = {},
): Promise<StartResult> {
  const running = sup.running(WATCHDOG_NAME);
  const wanted = { ...env, ...(ctx.tls ? { IFMESH_CA_FILE: ctx.tls.caFile } : {}) };
  if (running !== undefined) {
    // One started on another configuration (an earlier deploy's env file or --set values) would
    // restart services on it and log to its witness: replaced.
    const had = recordedEnv(sup);
    if (had === undefined || sameEnv(had, wanted))
      return {
        name: WATCHDOG_NAME,
        ok: true,
        pid: running,
        already_running: true,
        detail: 'already running',
      };
    await sup.stop(WATCHDOG_NAME, 5_000);
  }
  const pid = sup.start({
    name: WATCHDOG_NAME,
    role: 'supervisor',
    command: process.execPath,
    args: [path.join(packageRoot(), 'dist/bin/ifmesh.js'), 'supervise', '--state-dir', sup.state.root],
    cwd: sup.state.root,
    // Its health checks of https:// instances verify against the CA this run was given.
    env: wanted,
  });
  const ok = await waitFor(
    () => sup.tail(WATCHDOG_NAME, 5).includes('watching') || sup.running(WATCHDOG_NAME) === undefined,
    { timeoutMs: 10_000, intervalMs: 50 },
    ctx.clock,
    ctx.signal,
  );
  const alive = ok && sup.running(WATCHDOG_NAME) !== undefined;
  return {
    name: WATCHDOG_NAME,
    ok: alive,
    pid: alive ? pid : null,
    already_running: false,
    detail: alive ? `started (pid ${pid})` : `did not start: ${sup.tail(WATCHDOG_NAME, 5).trim()}`,
  };
}

/**
 * `ifmesh supervise --detach`: starts the state's supervisor in the background, on the environment it
 * was last started with (deploy's env file, secrets from the secrets file) when it is recorded, else
 * on `env` (this command's configuration).
 */
export async function detachWatchdog(
  sup: Supervisor,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'tls'>,
  env: Record<string, string>,
  /** --config was given: this command's configuration wins over the recorded one. */
  explicit: boolean,
): Promise<StartResult> {
  return ensureWatchdog(sup, ctx, (explicit ? undefined : recordedEnv(sup)) ?? env);
}

/** The whole environment the recorded supervisor was started with (secrets read back), if recorded. */
function recordedEnv(sup: Supervisor): Record<string, string> | undefined {
  const rec = readProcess(sup.state, WATCHDOG_NAME);
  return rec?.spec ? sup.launchEnv({ ...rec, spec: rec.spec }) : undefined;
}

const sameEnv = (a: Record<string, string>, b: Record<string, string>) => {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => a[k] === b[k]);
};
