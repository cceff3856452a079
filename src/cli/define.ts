// A command as a definition (wrangler's defineCommand is the model): each file under
// commands/<group>/<sub>.ts declares its path, summary, examples, arguments, flags and what it needs
// (the configuration, the state directory, the fleet view), and a `run` that returns an outcome.
// src/cli/mount.ts turns definitions into commander commands, resolves the needs once
// (src/cli/needs.ts) and maps the outcome to the exit code (src/cli/exit.ts).
//
// This module and the definition files load nothing heavy: a definition imports its op with
// `await import()` inside `run`, so `ifmesh --help` and the list of definitions (commands/index.ts)
// never load werift, ink or SQLite. Nothing here imports the registry.
import type { Command } from 'commander';
import type { LoadedConfig, MeshConfig } from '../config/load.js';
import type { ExitCodeName, ExitCodeValue } from '../errors.js';
import type { Fleet } from '../ops/fleet/fleet.js';
import type { StateDir } from '../state/state-dir.js';
import type { Output } from '../ui/output.js';
import type { Context } from './context.js';
import type { SharedFlag } from './options.js';

/** What a command gets besides its flags: the context for I/O, and a way to claim the signals. */
export interface CommandIo {
  ctx: Context;
  output(opts: { json?: boolean }): Output;
  /** Only the mount (src/cli/mount.ts) and legacy modules set exit codes; definitions return an Outcome. */
  setExitCode(code: ExitCodeValue): void;
  /** The exit code of a program run on the operator's behalf (`lab run`), passed through as it is. */
  passExitCode(code: number): void;
  /** A server claims SIGINT/SIGTERM: it shuts down gracefully on ctx.signal and returns its own code. */
  claimSignal(): void;
}

/** One flag: a shared one by name (src/cli/options.ts), or declared here as data. */
export type FlagSpec =
  | SharedFlag
  | {
      /** commander's flags string: '-n, --lines <n>', '--force', '--no-color'. */
      flags: string;
      description: string;
      default?: string | boolean | number | string[];
      /** Parses (and validates) the value; `previous` is the value so far (repeatable flags). */
      parse?: (value: string, previous: never) => unknown;
      choices?: readonly string[];
      required?: boolean;
      /** Accepted but not shown in --help or completion (internal flags). */
      hidden?: boolean;
    };

export interface ArgSpec {
  /** '<file>', '[name]', '<command...>'. */
  name: string;
  description?: string;
  choices?: readonly string[];
}

/** What a command needs resolved before it runs; resolved once, in src/cli/needs.ts. */
export type Need = 'config' | 'state' | 'fleet' | 'witness';

export interface AllNeeds {
  /** --config, --set, --stage loaded, and the CA it names trusted. */
  config: LoadedConfig;
  /** --state-dir (and --stage). */
  state: StateDir;
  /** The fleet view (--signaling, --witness, the state dir's instances, the config). */
  fleet: Fleet;
  /** The configuration with the fleet's witness: --witness > IF_WITNESS_ENDPOINT > the state's. */
  witness: MeshConfig;
}
export type Resolved<N extends Need> = Pick<
  AllNeeds,
  N | (N extends 'fleet' | 'witness' ? 'config' | 'state' : never)
>;

/**
 * What `run` returns: nothing (ok), an ExitCode name, or a code a program run on the operator's
 * behalf ended with (`lab run`), passed through as it is. src/cli/exit.ts maps it to the exit code.
 */
export type Outcome =
  | undefined
  | ExitCodeName
  | { readonly exitCode: ExitCodeValue }
  | { readonly passThrough: number };

export interface RunInput<F, A extends unknown[], N extends Need> {
  flags: F;
  args: A;
  needs: Resolved<N>;
  ctx: Context;
  io: CommandIo;
  /** Human output, or one JSON document with --json. */
  out: Output;
  /** The commander command being run (`completion` walks up to the program). */
  command: Command;
}

export interface CommandDefinition<
  F = Record<string, unknown>,
  A extends unknown[] = unknown[],
  N extends Need = Need,
> {
  /** 'releases', 'keys generate'; a group's own action has the group's name. */
  path: string;
  /** One line; for a command that is its own group, the registry's summary is used when omitted. */
  summary?: string;
  /** Each one runs this command; its --help shows them, its group's shows every sub-command's. */
  examples: readonly string[];
  args?: readonly ArgSpec[];
  flags: readonly FlagSpec[];
  needs?: readonly N[];
  /**
   * The needs are resolved only when this holds for the flags: a hidden mode that runs without them
   * (`load --worker` must not resolve the fleet). `run` reads no need when it does not hold.
   */
  needsIf?: (flags: F) => boolean;
  /**
   * A sub-command of a group whose own action shares flag names with it (`canary status --state-dir`):
   * commander hands such a flag to the group, so the flags are the group's and the sub-command's merged.
   */
  inheritFlags?: true;
  /** Text after the options in --help (before the examples). */
  helpAfter?: () => string;
  /** 'config' loaded with the production rules reported instead of enforced (deploy). */
  productionRules?: 'report';
  /**
   * The command may make its state directory (up, deploy, preflight before a first deploy). Every
   * other command refuses an explicit --state-dir (or IFMESH_STATE_DIR) that does not exist.
   */
  newState?: true;
  run(input: RunInput<F, A, N>): Promise<Outcome> | Outcome;
}

/** Identity, for the types: `export default defineCommand({...})`. */
export function defineCommand<F = Record<string, unknown>, A extends unknown[] = [], N extends Need = never>(
  def: CommandDefinition<F, A, N>,
): CommandDefinition<F, A, N> {
  return def;
}

/** A definition with its types erased: what lists, the mount and generators handle. */
// biome-ignore lint/suspicious/noExplicitAny: the flags, args and needs differ per definition
export type AnyDefinition = CommandDefinition<any, any, any>;

/** `failed(cond)`: the outcome of a check, exit 1 when it failed. */
export const failedIf = (failed: boolean): Outcome => (failed ? 'checkFailed' : undefined);
