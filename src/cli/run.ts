import { Command, CommanderError } from 'commander';
import { ExitCode, exitCodeTable, InterruptedError, toIfmeshError, UsageError } from '../errors.js';
import { packageVersion } from '../paths.js';
import { createOutput, renderError } from '../ui/output.js';
import type { Context } from './context.js';
import { exitCodesFooter, renderExitCodes } from './help.js';
import { type CommandIo, commands } from './registry.js';
import { trustFromFlagOrEnv } from './tls.js';

export const VERSION = packageVersion();

/** The words naming the command: the first ones that are not a program option or its value (--ca FILE). */
function commandWords(program: Command, argv: string[]): string[] {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) return argv.slice(i);
    const o = program.options.find((x) => x.long === a || x.short === a);
    if (o && (o.required || o.optional)) i++;
  }
  return [];
}

/** Runs one invocation of the CLI and returns its exit code. Never calls process.exit. */
export async function runCli(argv: string[], ctx: Context): Promise<number> {
  let exitCode: number = ExitCode.ok;
  let signalClaimed = false;
  const json = argv.includes('--json');
  const io: CommandIo = {
    ctx,
    output: (opts) => createOutput(ctx, Boolean(opts.json)),
    setExitCode: (code) => {
      exitCode = Math.max(exitCode, code);
    },
    passExitCode: (code) => {
      exitCode = code;
    },
    claimSignal: () => {
      signalClaimed = true;
    },
  };

  const program = new Command('ifmesh')
    .description('Operate a WebRTC agent mesh: signaling, IF.witness, agents and the runbook procedures')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .option(
      '--ca <file>',
      "PEM CA that signed the signaling and witness certificates: https:// and wss:// verify against it and the system CAs (default $IFMESH_CA_FILE, else the env file's IFMESH_CA_FILE)",
    )
    // --ca is the program's: every command's help lists it under "Global Options".
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    });
  // Once per run, before any request: every op gets a dispatcher that trusts the CA.
  program.hook('preAction', () => trustFromFlagOrEnv(ctx, program.opts<{ ca?: string }>().ca));
  program.helpCommand(
    'help [command]',
    "show a command's help; 'help exit-codes': what each exit code means",
  );
  program.addHelpText('after', exitCodesFooter());

  const [first, second] = commandWords(program, argv);
  if (first === 'help' && second === 'exit-codes') {
    if (json) ctx.stdout.write(`${JSON.stringify({ exit_codes: exitCodeTable() }, null, 2)}\n`);
    else ctx.stdout.write(renderExitCodes());
    return ExitCode.ok;
  }
  // Only the invoked command's module is loaded (every one for a command that needs the whole tree);
  // the others are registered by name and summary.
  const target = first === 'help' ? second : first;
  const whole = commands.find((e) => e.name === target)?.tree;
  for (const entry of commands) {
    const cmd = program.command(entry.name).description(entry.summary);
    if (entry.name === target || whole) (await entry.load()).register(cmd, io);
  }

  try {
    if (ctx.signal.aborted) throw new InterruptedError();
    // An interrupt ends the run even while a command waits on I/O that ignores the signal.
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        if (!signalClaimed) reject(new InterruptedError());
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([program.parseAsync(argv, { from: 'user' }), aborted]);
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
    if (argv.length === 0) program.outputHelp();
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // A group named without its command (`ifmesh maintenance` in a cron line that lost `daily`):
      // commander printed the group's help on stderr; it is a usage error, not a run that did nothing.
      // Bare `ifmesh` lands here too (its help, exit 0 as ever), and `help NOSUCH` (a usage error).
      const words = commandWords(program, argv);
      const firstFlag = words.findIndex((w) => w.startsWith('-'));
      const group = (firstFlag < 0 ? words : words.slice(0, firstFlag)).join(' ');
      if (err.code === 'commander.help' && err.exitCode !== 0 && words[0] !== undefined) {
        const e =
          words[0] === 'help'
            ? new UsageError(`no command ${words.slice(1).join(' ')}`, 'ifmesh --help lists them')
            : new UsageError(
                `ifmesh ${group} needs a command`,
                `pick one of those listed above: ifmesh ${group} COMMAND`,
              );
        renderError(ctx, e, json);
        return ExitCode.usage;
      }
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      ) {
        return ExitCode.ok;
      }
      // commander already printed its message on stderr; with --json the caller still gets one document.
      if (json)
        renderError({ ...ctx, stderr: nullStream(ctx) }, new UsageError(cleanCommanderMessage(err)), true);
      return ExitCode.usage;
    }
    const e = ctx.signal.aborted && !signalClaimed ? new InterruptedError() : toIfmeshError(err);
    renderError(ctx, e, json);
    return e.exitCode;
  }
}

function cleanCommanderMessage(err: CommanderError): string {
  return err.message.replace(/^error:\s*/, '');
}

function nullStream(ctx: Context): Context['stderr'] {
  const s = Object.create(ctx.stderr) as Context['stderr'];
  s.write = (() => true) as Context['stderr']['write'];
  return s;
}
