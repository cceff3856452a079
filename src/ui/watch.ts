// `--watch` (canary status, incident show), like `kubectl argo rollouts get rollout --watch`: on a
// terminal one view redrawn in place at every look (ink, loaded only then), left as it last stood
// when the watch ends; without one, a line per change; with --json, one document per change
// (NDJSON), each the document the command prints without --watch.
import { Chalk, type ChalkInstance } from 'chalk';
import type { Context } from '../cli/context.js';
import { colorLevel } from './output.js';

export interface WatchSpec<T> {
  /** What counts as a change: a look with the same key prints nothing in a pipe or as NDJSON. */
  key(doc: T): string;
  /** A change as one line, for a pipe (the time of the look goes before it). */
  line(doc: T, c: ChalkInstance): string;
  /** The whole view, for a terminal. */
  view(doc: T, c: ChalkInstance): string;
}

interface Shown<T> {
  look(doc: T): void;
  /** A line for people on stderr; held until the view ends on a terminal (it would tear the frame). */
  note(line: string): void;
  /** The watch ended: the last view stays (a terminal), nothing more is printed. */
  close(interrupted: boolean): Promise<void>;
}

const clockTime = (ms: number) => new Date(ms).toISOString().slice(11, 19);

async function shown<T>(ctx: Context, json: boolean, spec: WatchSpec<T>): Promise<Shown<T>> {
  const c = new Chalk({ level: colorLevel(ctx.env, ctx.stdout) });
  let last: string | undefined;
  const changed = (doc: T) => {
    const key = spec.key(doc);
    if (key === last) return false;
    last = key;
    return true;
  };
  if (json || !ctx.stdout.isTTY || ctx.env.CI) {
    const print = json
      ? (doc: T) => `${JSON.stringify(doc)}\n`
      : (doc: T) => `${new Date(ctx.clock.now()).toISOString()} ${spec.line(doc, c)}\n`;
    return {
      look: (doc) => {
        if (changed(doc)) ctx.stdout.write(print(doc));
      },
      note: (line) => ctx.stderr.write(`${line}\n`),
      close: async () => {},
    };
  }
  const { liveView } = await import('./watch-view.js');
  // Drawn from the first look: a watch that fails before it (no such canary) leaves no frame.
  let live: ReturnType<typeof liveView> | undefined;
  let doc: T | undefined;
  const notes: string[] = [];
  const frame = (d: T, footer: string) => `${spec.view(d, c)}${footer ? `\n${c.dim(footer)}` : ''}`;
  return {
    // Every look redraws, changed or not: the time in the last line says the view is current.
    look: (d) => {
      doc = d;
      live ??= liveView(ctx.stdout as NodeJS.WriteStream);
      live.show(frame(d, `looked at ${clockTime(ctx.clock.now())} · Ctrl-C stops watching`));
    },
    note: (line) => notes.push(line),
    close: async (interrupted) => {
      if (live && doc !== undefined) {
        live.show(frame(doc, interrupted ? `stopped watching at ${clockTime(ctx.clock.now())}` : ''));
        await live.close();
      }
      for (const line of notes) ctx.stderr.write(`${line}\n`);
    },
  };
}

/**
 * Runs `watch`, showing every look it reports; returns what it returns, or undefined when an
 * interrupt (Ctrl-C) ended it. The caller claims the signal, so an interrupt ends the watch here.
 */
export async function watchOutput<T, R>(
  ctx: Context,
  json: boolean,
  spec: WatchSpec<T>,
  watch: (look: (doc: T) => void, note: (line: string) => void) => Promise<R>,
): Promise<R | undefined> {
  const out = await shown(ctx, json, spec);
  let result: R | undefined;
  try {
    result = await watch(
      (doc) => out.look(doc),
      (line) => out.note(line),
    );
  } catch (err) {
    if (!ctx.signal.aborted) throw err;
  } finally {
    await out.close(ctx.signal.aborted);
  }
  return ctx.signal.aborted ? undefined : result;
}
