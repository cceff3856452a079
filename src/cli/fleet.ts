// What most commands resolve first, in one place: the configuration (--config, --set), the state
// directory (--state-dir) and the fleet view built from both (--signaling, --witness).
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_CONFIG_PATH, type LoadedConfig } from '../config/load.js';
import { ConfigError, UsageError } from '../errors.js';
import { type Fleet, loadFleet } from '../ops/fleet/fleet.js';
import { scanProcesses } from '../state/processes.js';
import { resolveState, resolveStateDir, type StateDir } from '../state/state-dir.js';
import { createOutput } from '../ui/output.js';
import type { Context } from './context.js';
import type { ConfigFlags } from './options.js';
import { loadCommandConfig } from './tls.js';

export interface FleetFlagsIn extends ConfigFlags {
  stateDir?: string;
  signaling?: string;
  witness?: string;
}

export interface Resolved {
  loaded: LoadedConfig;
  state: StateDir;
  fleet: Fleet;
}

/**
 * An explicit state directory (--state-dir, IFMESH_STATE_DIR) that does not exist is a mistyped path
 * or the wrong host, not an empty fleet: refused before anything reads defaults or writes there
 * (a verify of the config's default port, an incident and its lock in a new directory).
 */
export function requireExistingState(ctx: Context, flags: Pick<FleetFlagsIn, 'stateDir' | 'stage'>): void {
  const given = flags.stateDir ?? ctx.env.IFMESH_STATE_DIR;
  if (given === undefined) return;
  const dir = resolveStateDir(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
  if (existsSync(dir)) return;
  const from = flags.stateDir !== undefined ? '--state-dir' : 'IFMESH_STATE_DIR';
  throw new UsageError(
    `no ifmesh state directory at ${dir} (${from}): nothing was deployed there`,
    `check the path (a fleet's state directory is the one its \`ifmesh deploy\` or \`ifmesh up\` used); for a fleet ifmesh did not deploy, make it first: mkdir -p ${given}`,
    'state_dir_missing',
  );
}

/**
 * The configuration of a command on an existing state directory: --config, IFMESH_CONFIG, --stage
 * or the default file as ever; when none names a file, the env file the state's services were started
 * on (`deploy --config /etc/ifmesh/prod.env`, recorded in their launch specs), so `status`, `canary`,
 * `rollback` or `top --state-dir S` read the witness, STUN, TURN and CA that deploy used, not the
 * defaults. That file is read for what it says, never refused on: its production rules are
 * reported, and one this user cannot read, or that is gone or no longer loads, gives way to the
 * defaults with a warning.
 */
export async function loadStateConfig(
  ctx: Context,
  flags: FleetFlagsIn,
  state: StateDir,
  opts: { productionRules?: 'report' } = {},
): Promise<LoadedConfig> {
  const own = () => loadCommandConfig(ctx, flags, opts);
  if (
    flags.config !== undefined ||
    flags.stage !== undefined ||
    ctx.env.IFMESH_CONFIG ||
    existsSync(path.resolve(ctx.cwd, DEFAULT_CONFIG_PATH))
  )
    return own();
  const recorded = recordedEnvFile(state);
  if (!recorded) return own();
  const warn = (why: string) =>
    createOutput(ctx, false).warn(
      `the fleet's env file ${recorded.file} (from its records) ${why}: this command runs on the defaults; pass --config FILE`,
    );
  if (!recorded.readable) {
    warn(existsSync(recorded.file) ? 'cannot be read by this user' : 'no longer exists');
    return own();
  }
  return loadCommandConfig(ctx, { ...flags, config: recorded.file }, { productionRules: 'report' }).catch(
    (err: unknown) => {
      if (!(err instanceof ConfigError)) throw err;
      warn(`does not load (${err.message.split('\n')[0]})`);
      return own();
    },
  );
}

/** Also settles the context's CA (--ca, IFMESH_CA_FILE): see ./tls.ts. */
export async function resolveFleet(ctx: Context, flags: FleetFlagsIn): Promise<Resolved> {
  requireExistingState(ctx, flags);
  const state = resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
  const loaded = await loadStateConfig(ctx, flags, state);
  const fleet = loadFleet(state, loaded, {
    signaling: flags.signaling ?? ctx.env.IFMESH_SIGNALING_URL,
    witness: flags.witness,
  });
  // Left out, not fatal: one truncated record must not hide the rest of the fleet at 3 a.m.
  const out = createOutput(ctx, false);
  for (const u of fleet.unreadable)
    out.warn(`${u.error}: process ${u.name} is left out of this command's fleet; ${u.fix}`);
  return { loaded, state, fleet };
}

/**
 * The env file the state's services were started on (deploy's --config, recorded in their launch
 * specs as IFMESH_CONFIG), if it still exists; the signaling instances' first.
 */
function recordedEnvFile(state: StateDir): { file: string; readable: boolean } | undefined {
  const records = scanProcesses(state).records;
  const ordered = [...records.filter((r) => r.role === 'signaling'), ...records];
  const files = ordered.flatMap((r) => {
    const f = r.spec?.env.IFMESH_CONFIG;
    return f && path.isAbsolute(f) ? [f] : [];
  });
  const ok = files.find(readable);
  if (ok) return { file: ok, readable: true };
  return files[0] ? { file: files[0], readable: false } : undefined;
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
