// The one place a command's trust in TLS certificates is decided: --ca FILE, else IFMESH_CA_FILE
// (environment, env file or --set). The context's dispatcher is replaced once, before any request,
// so every op and client verifies https:// against the CA without knowing where it came from.

import { loadTrust, type Trust, trustDispatcher } from '../clients/tls-trust.js';
import type { LoadedConfig, LoadOptions } from '../config/load.js';
import { loadConfig } from '../config/load.js';
import type { Context } from './context.js';
import type { ConfigFlags } from './options.js';

/**
 * Makes `ctx` trust `t`. The context is changed in place, not copied, because commands keep the one
 * io.ctx they were registered with; bin/ defines `dispatcher` as a getter, hence defineProperty.
 */
export function trustCa(ctx: Context, t: Trust): void {
  Object.defineProperty(ctx, 'dispatcher', {
    value: trustDispatcher(t),
    writable: true,
    enumerable: true,
    configurable: true,
  });
  ctx.tls = t;
}

/** --ca, else $IFMESH_CA_FILE: run before the command's action (run.ts's preAction hook). */
export function trustFromFlagOrEnv(ctx: Context, caFlag: string | undefined): void {
  if (caFlag) trustCa(ctx, loadTrust(caFlag, ctx.cwd, '--ca'));
  else if (ctx.env.IFMESH_CA_FILE) trustCa(ctx, loadTrust(ctx.env.IFMESH_CA_FILE, ctx.cwd, 'IFMESH_CA_FILE'));
}

/** IFMESH_CA_FILE from the env file (or --set), when neither --ca nor the environment gave a CA. */
export function trustFromConfig(ctx: Context, loaded: LoadedConfig): void {
  if (!ctx.tls && loaded.config.caFile)
    trustCa(ctx, loadTrust(loaded.config.caFile, ctx.cwd, 'IFMESH_CA_FILE'));
}

/** What --config, --set and --stage ask of loadConfig. */
export const configLoadOptions = (ctx: Context, flags: ConfigFlags): LoadOptions => ({
  cwd: ctx.cwd,
  env: ctx.env,
  file: flags.config,
  flags: flags.set,
  stage: flags.stage,
});

/** loadConfig with --config/--set/--stage, then the CA it may name. What commands call instead of loadConfig. */
export async function loadCommandConfig(
  ctx: Context,
  flags: ConfigFlags,
  opts: Pick<LoadOptions, 'productionRules'> = {},
): Promise<LoadedConfig> {
  const loaded = await loadConfig({ ...configLoadOptions(ctx, flags), ...opts });
  trustFromConfig(ctx, loaded);
  return loaded;
}
