// Definitions (src/cli/define.ts) made into commander commands: flags and arguments as declared,
// examples in --help, and an action that resolves the needs once (./needs.ts), runs the definition
// and maps its outcome to the exit code (./exit.ts). A group's module under commands/<group>/index.ts
// is `mount(definitions)`: what the registry loads when that group is invoked.
import { Argument, type Command, Option } from 'commander';
import type { Output } from '../ui/output.js';
import type { AnyDefinition, ArgSpec, CommandIo, FlagSpec } from './define.js';
import { exitCodeOf } from './exit.js';
import type { FleetFlagsIn } from './fleet.js';
import { examplesText } from './help.js';
import { resolveNeeds } from './needs.js';
import { shared } from './options.js';

export function toOption(f: FlagSpec): Option {
  if (typeof f === 'string') return shared(f);
  const o = new Option(f.flags, f.description);
  if (f.choices) o.choices(f.choices);
  if (f.parse) o.argParser(f.parse as (value: string, previous: unknown) => unknown);
  if (f.default !== undefined) o.default(f.default);
  if (f.required) o.makeOptionMandatory();
  if (f.hidden) o.hideHelp();
  return o;
}

function toArgument(a: ArgSpec): Argument {
  const arg = new Argument(a.name, a.description);
  if (a.choices) arg.choices(a.choices);
  return arg;
}

/** The definitions' commander commands under `group` (one whose path is the group's name is the group itself). */
function attach(group: Command, defs: readonly AnyDefinition[], io: CommandIo, own: GroupHelp): void {
  const all = defs.flatMap((d) => d.examples);
  if (own.description) group.description(own.description);
  if (own.helpAfter) {
    const text = own.helpAfter;
    group.addHelpText('after', () => text());
  }
  for (const def of defs) {
    const sub = def.path.split(' ')[1];
    const cmd = sub === undefined ? group : group.command(sub);
    if (def.summary) cmd.description(def.summary);
    for (const a of def.args ?? []) cmd.addArgument(toArgument(a));
    for (const f of def.flags) cmd.addOption(toOption(f));
    if (def.helpAfter) {
      const text = def.helpAfter;
      cmd.addHelpText('after', () => text());
    }
    cmd.addHelpText('after', examplesText(sub === undefined ? all : def.examples));
    cmd.action(async (...params: unknown[]) => {
      const command = params[params.length - 1] as Command;
      const flags = (
        def.inheritFlags ? command.optsWithGlobals() : params[params.length - 2]
      ) as FleetFlagsIn & {
        json?: boolean;
      };
      const args = params.slice(0, -2);
      const wanted = def.needsIf?.(flags) === false ? [] : (def.needs ?? []);
      const needs = await resolveNeeds(wanted, io.ctx, flags, def.productionRules, def.newState);
      let out: Output | undefined;
      const outcome = await def.run({
        flags,
        args,
        needs,
        ctx: io.ctx,
        io,
        command,
        get out() {
          out ??= io.output(flags);
          return out;
        },
      });
      const exit = exitCodeOf(outcome);
      if (exit.pass) io.passExitCode(exit.code);
      else if (exit.code) io.setExitCode(exit.code);
    });
  }
  // A group without an action of its own shows every example in its --help.
  if (!defs.some((d) => !d.path.includes(' '))) group.addHelpText('after', examplesText(all));
}

/** A group's own --help, when it says more than the registry's summary (`failover`'s classification). */
export interface GroupHelp {
  description?: string;
  /** Text after the group's commands (before the examples). */
  helpAfter?: () => string;
}

/** A group's module, as the registry loads it: `register` attaches the definitions. */
export function mount(
  definitions: readonly AnyDefinition[],
  own: GroupHelp = {},
): {
  definitions: readonly AnyDefinition[];
  register(cmd: Command, io: CommandIo): void;
} {
  return { definitions, register: (cmd, io) => attach(cmd, definitions, io, own) };
}
