import { promises as fs } from 'node:fs';
import path from 'node:path';
import { defineCommand, failedIf } from '../../src/cli/define.js';
import { durationFlag } from '../../src/cli/options.js';
import { readStdin } from '../../src/cli/stdin.js';
import { UsageError } from '../../src/errors.js';

type Flags = { pubkey: string; from?: string; maxSkew: string; json?: boolean };

export default defineCommand<Flags, [string | undefined]>({
  path: 'message verify',
  summary: 'verify an IFMessage read from stdin (or FILE); exit 1 with the reason when it fails',
  examples: ['ifmesh message verify --pubkey keys/agent-1.pub < msg.json'],
  args: [{ name: '[file]', description: 'message file; default: stdin' }],
  flags: [
    {
      flags: '--pubkey <key>',
      description: "sender's public key: 43 base64url characters, or a .pub/.key file",
      required: true,
    },
    { flags: '--from <agent>', description: 'require this sender id (the channel peer)' },
    {
      flags: '--max-skew <duration>',
      description: 'accepted clock skew (a bare number is in seconds)',
      default: '30s',
    },
    'json',
  ],
  async run({ args: [file], flags, ctx, out }) {
    const skewMs = durationFlag(flags.maxSkew, '--max-skew', { bare: 's' });
    const text = file
      ? await readFileText(path.resolve(ctx.cwd, file))
      : await readStdin(ctx, 'ifmesh message verify --pubkey KEY < msg.json');
    const { verifyOne } = await import('../../src/ops/message.js');
    const report = await verifyOne({
      pubkey: flags.pubkey,
      cwd: ctx.cwd,
      text,
      expectFrom: flags.from,
      skewMs,
      nowMs: ctx.clock.now(),
    });
    out.result(report, (r, c) =>
      r.valid
        ? `${c.green('✓')} valid ${r.type} ${r.id} from ${r.from} to ${r.to} (key ${r.key_id})`
        : `${c.red('✗')} rejected: ${r.reason}: ${r.detail}`,
    );
    return failedIf(!report.valid);
  },
});

async function readFileText(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`, 'check the path');
  }
}
