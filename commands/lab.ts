// ifmesh lab: a NAT lab in network namespaces (root only). Thin: flags in, ops/lab out.
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { intFlag, withJson } from '../src/cli/options.js';
import { ExitCode } from '../src/errors.js';
import { labDown, labRun, labStatus, labUp } from '../src/ops/lab/lab.js';
import { checkLabName, parseNats } from '../src/ops/lab/plan.js';
import { renderLabDown, renderLabStatus, renderLabUp } from '../src/ui/lab.js';

const nameOption = (c: Command) =>
  c.option('--name <lab>', 'the lab (namespaces ifmesh-lab-<lab>-*)', 'main');

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(
    nameOption(cmd.command('up').description('build the lab and start coturn, signaling and the witness')),
  )
    .option(
      '--nat <types>',
      'one host per entry, each behind its own NAT: cone, symmetric or none',
      'cone,symmetric',
    )
    .option('--turn-servers <n>', 'coturn instances in the public namespace (1 or 2)', '1')
    .option('--dry-run', 'print the plan (namespaces, ip and nft commands, processes) and change nothing')
    .action(
      async (flags: { name: string; nat: string; turnServers: string; dryRun?: boolean; json?: boolean }) => {
        const out = io.output(flags);
        const report = await labUp(
          {
            name: checkLabName(flags.name),
            nats: parseNats(flags.nat),
            turnServers: intFlag(flags.turnServers, '--turn-servers', 1, 2),
            dryRun: Boolean(flags.dryRun),
            progress: (line) => out.info(line),
          },
          ctx,
        );
        out.result(report, renderLabUp);
      },
    );

  withJson(
    nameOption(cmd.command('down').description('stop every lab process, delete its namespaces and files')),
  ).action(async (flags: { name: string; json?: boolean }) => {
    io.output(flags).result(await labDown({ name: checkLabName(flags.name) }, ctx), renderLabDown);
  });

  withJson(nameOption(cmd.command('status').description('the lab: namespaces, processes, addresses'))).action(
    async (flags: { name: string; json?: boolean }) => {
      const report = await labStatus({ name: checkLabName(flags.name) }, ctx);
      io.output(flags).result(report, renderLabStatus);
      if (!report.healthy) io.setExitCode(ExitCode.checkFailed);
    },
  );

  nameOption(
    cmd
      .command('run')
      .description('run a command on a lab host (ip netns exec): ifmesh lab run h1 -- CMD …')
      .argument('<host>', 'h1 … hN, r1 … rN or pub')
      .argument('<command...>', 'the command and its arguments, after --'),
  ).action(async (host: string, command: string[], flags: { name: string }) => {
    io.claimSignal();
    const code = await labRun(
      {
        name: checkLabName(flags.name),
        host,
        command,
        stdin: ctx.stdin === process.stdin ? 'inherit' : ctx.stdin,
        stdout: ctx.stdout,
        stderr: ctx.stderr,
      },
      ctx,
    );
    io.passExitCode(code);
  });
}
