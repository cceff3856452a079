// Progress of long procedures (up, deploy): structured steps, rendered as plain lines for pipes and
// logs, or as a live ink view on a terminal (loaded only then, so start-up stays fast).
import type { Context } from '../cli/context.js';

export type StepState = 'running' | 'ok' | 'warn' | 'fail';

/** A finished step's mark, the same in progress lines and checklists: a warning is never a tick. */
export const MARK = { ok: '✓', warn: '!', fail: '✗' } as const;

export interface Progress {
  step(name: string, state: StepState, detail?: string): void;
  info(line: string): void;
  /** Stops a live view; plain output needs nothing. */
  close(): Promise<void>;
}

export function plainProgress(write: (line: string) => void): Progress {
  return {
    step: (name, state, detail) => {
      if (state !== 'running') write(`${MARK[state]} ${name}${detail ? ` ${detail}` : ''}`);
    },
    info: (line) => write(line),
    close: async () => {},
  };
}

/** ink on a terminal (stderr is a TTY and no --json), plain lines otherwise. */
export async function createProgress(ctx: Context, json: boolean): Promise<Progress> {
  const plain = plainProgress((line) => ctx.stderr.write(`${line}\n`));
  if (json || !ctx.stderr.isTTY || ctx.env.CI) return plain;
  const { inkProgress } = await import('./progress-view.js');
  return inkProgress(ctx.stderr);
}
