import { Chalk, type ChalkInstance } from 'chalk';
import type { Context, OutStream } from '../cli/context.js';
import { ConfigError, formatConfigIssue, type IfmeshError } from '../errors.js';
import { shownOn } from './progress.js';

export type ColorLevel = 0 | 1 | 2 | 3;

/** NO_COLOR (any non-empty value) wins, then FORCE_COLOR, then whether the stream is a terminal. */
export function colorLevel(env: Context['env'], stream: OutStream): ColorLevel {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    if (force === '2') return 2;
    if (force === '3') return 3;
    return 1;
  }
  if (!stream.isTTY || env.TERM === 'dumb') return 0;
  return env.COLORTERM === 'truecolor' || env.COLORTERM === '24bit' ? 3 : 1;
}

export interface Output {
  readonly json: boolean;
  /** Colours for stdout text. */
  readonly c: ChalkInstance;
  /**
   * The command's result: one JSON document with --json, else the human rendering. `shown` holds the
   * steps progress already printed as lines above it (no terminal): the rendering leaves those out.
   */
  result<T>(data: T, human: (data: T, c: ChalkInstance, shown: ReadonlySet<string>) => string): void;
  /** A diagnostic for people, always on stderr. */
  warn(message: string): void;
  info(message: string): void;
}

export function createOutput(ctx: Context, json: boolean): Output {
  const c = new Chalk({ level: colorLevel(ctx.env, ctx.stdout) });
  const ce = new Chalk({ level: colorLevel(ctx.env, ctx.stderr) });
  return {
    json,
    c,
    result(data, human) {
      if (json) ctx.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      else {
        const text = human(data, c, shownOn(ctx.stdout));
        if (text) ctx.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      }
    },
    warn(message) {
      ctx.stderr.write(`${ce.yellow('warning:')} ${message}\n`);
    },
    info(message) {
      ctx.stderr.write(`${message}\n`);
    },
  };
}

/** Errors go to stderr for people; with --json the same error is also the one document on stdout. */
export function renderError(ctx: Context, err: IfmeshError, json: boolean): void {
  const ce = new Chalk({ level: colorLevel(ctx.env, ctx.stderr) });
  const lines =
    err instanceof ConfigError && err.issues.length > 0 ? err.issues.map(formatConfigIssue) : [err.message];
  for (const line of lines) ctx.stderr.write(`${ce.red('error:')} ${line}\n`);
  if (err.hint) ctx.stderr.write(`${ce.dim('hint:')} ${err.hint}\n`);
  if (json) {
    const error: Record<string, unknown> = { code: err.code, message: err.message };
    if (err.hint) error.hint = err.hint;
    if (err instanceof ConfigError) error.issues = err.issues;
    ctx.stdout.write(`${JSON.stringify({ error })}\n`);
  }
}
