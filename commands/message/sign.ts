import path from 'node:path';
import { defineCommand } from '../../src/cli/define.js';

type Flags = { key: string; to: string; type: string; payload?: string };

export default defineCommand<Flags>({
  path: 'message sign',
  summary: 'print a signed IFMessage (one line of JSON) from the identity in --key',
  examples: ['ifmesh message sign --key keys/agent-1.key --to agent-2 --type ping > msg.json'],
  flags: [
    { flags: '--key <file>', description: 'identity file written by `ifmesh keys generate`', required: true },
    { flags: '--to <agent>', description: 'recipient agent id', required: true },
    { flags: '--type <type>', description: 'message type, e.g. ping', required: true },
    { flags: '--payload <json>', description: 'payload object as JSON' },
    'json',
  ],
  async run({ flags, ctx }) {
    const { signOne } = await import('../../src/ops/message.js');
    const message = await signOne({
      keyFile: path.resolve(ctx.cwd, flags.key),
      to: flags.to,
      type: flags.type,
      payload: flags.payload,
      nowMs: ctx.clock.now(),
    });
    ctx.stdout.write(`${JSON.stringify(message)}\n`);
  },
});
