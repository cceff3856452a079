// Progress of long procedures (up, deploy, preflight, verify, failover): structured steps, shown
// once. On a terminal a live ink view (loaded only then, so start-up stays fast) that the result
// replaces when the procedure ends; without one, a line per finished step on stdout, where the
// result then leaves those steps out (the renderers ask `shown`); with --json, lines on stderr.
import type { Context, OutStream } from '../cli/context.js';

export type StepState = 'running' | 'ok' | 'warn' | 'fail';

/** A finished step's mark, the same in progress lines and checklists: a warning is never a tick. */
export const MARK = { ok: '✓', warn: '!', fail: '✗' } as const;

export interface Progress {
  step(name: string, state: StepState, detail?: string): void;
  info(line: string): void;
  /** Ends a live view: erased when every step finished (the result follows), else left as it stopped. */
  close(): Promise<void>;
}

export function plainProgress(write: (line: string) => void, seen?: Set<string>): Progress {
  return {
    step: (name, state, detail) => {
      if (state === 'running') return;
      write(`${MARK[state]} ${name}${detail ? ` ${detail}` : ''}`);
      seen?.add(name);
    },
    info: (line) => {
      write(line);
      seen?.add(line);
    },
    close: async () => {},
  };
}

// Per output stream: the step names (and info lines) plain progress printed there.
const printed = new WeakMap<OutStream, Set<string>>();
const NONE: ReadonlySet<string> = new Set();

/** What progress already printed on `stream`: a result rendered there leaves those steps out. */
export function shownOn(stream: OutStream): ReadonlySet<string> {
  return printed.get(stream) ?? NONE;
}

/** ink on a terminal (stderr is a TTY, no CI, no --json); plain lines otherwise. */
export async function createProgress(ctx: Context, json: boolean): Promise<Progress> {
  // stdout is the JSON document: progress stays on stderr.
  if (json) return plainProgress((line) => ctx.stderr.write(`${line}\n`));
  if (!ctx.stderr.isTTY || ctx.env.CI) {
    // No live view: each step is a line of the human output, printed once, where the result goes.
    const seen = printed.get(ctx.stdout) ?? new Set<string>();
    printed.set(ctx.stdout, seen);
    return plainProgress((line) => ctx.stdout.write(`${line}\n`), seen);
  }
  const { inkProgress } = await import('./progress-view.js');
  return inkProgress(ctx.stderr);
}
