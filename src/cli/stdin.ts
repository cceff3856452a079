import { UsageError } from '../errors.js';
import type { Context } from './context.js';

const MAX_STDIN = 1024 * 1024;

/** Reads all of stdin (at most 1 MiB). Refuses a terminal, which would otherwise wait forever. */
export async function readStdin(ctx: Context, usage: string): Promise<string> {
  if ((ctx.stdin as { isTTY?: boolean }).isTTY)
    throw new UsageError('expected input on stdin', `e.g. ${usage}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > MAX_STDIN) throw new UsageError('stdin is larger than 1 MiB', 'pass a single message');
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
