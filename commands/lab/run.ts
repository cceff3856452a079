import { defineCommand } from '../../src/cli/define.js';
import { LAB_NAME } from './name.js';

export default defineCommand<{ name: string }, [string, string[]]>({
  path: 'lab run',
  summary: 'run a command on a lab host (ip netns exec): ifmesh lab run h1 -- CMD …',
  examples: [
    'ifmesh lab run h1 -- ifmesh agent run --id a1 --key a1.key --signaling ws://203.0.113.20:8443 --ice-address 10.0.1.2',
  ],
  args: [
    { name: '<host>', description: 'h1 … hN, r1 … rN or pub' },
    { name: '<command...>', description: 'the command and its arguments, after --' },
  ],
  flags: [LAB_NAME],
  async run({ args: [host, command], flags, ctx, io }) {
    const [{ labRun }, { checkLabName }] = await Promise.all([
      import('../../src/ops/lab/lab.js'),
      import('../../src/ops/lab/plan.js'),
    ]);
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
    // The exit code of the command it ran, passed through as it is.
    return { passThrough: code };
  },
});
