import type { Context } from '../../src/cli/context.js';
import { loadStateConfig } from '../../src/cli/fleet.js';
import type { ConfigFlags } from '../../src/cli/options.js';
import {
  observeCheckpoint,
  WitnessInconsistentError,
  WitnessKeyChangedError,
} from '../../src/clients/witness-checkpoint.js';
import { loadFleet } from '../../src/ops/fleet/fleet.js';
import type { StateDir } from '../../src/state/state-dir.js';
import { resolveState } from '../../src/state/state-dir.js';
import type { Output } from '../../src/ui/output.js';

/**
 * The witness a client command talks to: --witness, else IF_WITNESS_ENDPOINT, else the state's
 * (the env file its fleet was deployed with, as every command on a state reads it).
 */
export async function witnessEndpoint(
  flags: ConfigFlags & { witness?: string; stateDir?: string },
  ctx: Context,
): Promise<{ url: string; apiKey: string }> {
  const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
  const loaded = await loadStateConfig(ctx, flags, state);
  const w = loadFleet(state, loaded, { witness: flags.witness }).witness;
  return { url: w.url, apiKey: w.api_key };
}

/**
 * Every client keeps the newest checkpoint it has seen; an inconsistent log (or a changed key) is
 * warned about and fails the command: true then.
 */
export async function observeWitness(
  url: string,
  out: Output,
  state: StateDir,
  ctx: Context,
): Promise<boolean> {
  try {
    await observeCheckpoint({ url, state, dispatcher: ctx.dispatcher });
  } catch (err) {
    if (err instanceof WitnessInconsistentError || err instanceof WitnessKeyChangedError) {
      out.warn(err instanceof WitnessKeyChangedError ? `${err.message}; ${err.hint}` : err.message);
      return true;
    }
  }
  return false;
}
