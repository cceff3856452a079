// Typed errors with stable codes. This module imports nothing so that every layer may use it.
// The exit code of a failure is decided here and only here (README: "Exit codes").

export const ExitCode = {
  ok: 0,
  checkFailed: 1,
  usage: 2,
  unreachable: 3,
  unauthorized: 4,
  /** `canary status`: an operator aborted the canary. */
  canaryAborted: 5,
  /** `canary status`: frozen after a failed analysis (--freeze-on-failure), waiting for promote or abort. */
  canaryFrozen: 6,
  /** `canary status --watch`: still progressing when --timeout passed. */
  canaryTimedOut: 7,
  /** `canary status`: progressing, but the process running it is gone. */
  canaryRunnerDied: 8,
  /** Another run holds the lock (`maintenance` under cron): try again later (sysexits EX_TEMPFAIL). */
  locked: 75,
  interrupted: 130,
} as const;
export type ExitCodeName = keyof typeof ExitCode;

/**
 * What each exit code means, for people: `ifmesh help exit-codes`, the footer of `ifmesh --help` and
 * README's "Exit codes" table are all rendered from this one table (a test compares
 * README's with it). Typed by ExitCode's keys, so a new code cannot be added without its meaning.
 */
export const EXIT_CODE_MEANINGS: Record<ExitCodeName, { short: string; meaning: string }> = {
  ok: {
    short: 'ok',
    meaning:
      'ok; `canary status`: the candidate is promoted (also: still progressing with a live runner, without `--watch`)',
  },
  checkFailed: {
    short: 'check failed or unhealthy',
    meaning:
      'a check failed or something is unhealthy; `incident`: a step failed or a notice (page, team post) did not go out; `canary status`: the analysis failed and the canary agents were rolled back',
  },
  usage: {
    short: 'usage or configuration error',
    meaning:
      'usage or configuration error: an unknown flag, a malformed value (a duration, a count), a command group without its command (`ifmesh maintenance`), an invalid config; `deploy` with `PRODUCTION_MODE=true` and a production rule failing (`production_refused`); `canary status`: no canary in this state directory',
  },
  unreachable: {
    short: 'dependency unreachable',
    meaning: 'a dependency is unreachable; `status`: nothing runs',
  },
  unauthorized: { short: 'unauthorized', meaning: 'unauthorized: credentials missing or refused' },
  canaryAborted: { short: 'canary aborted', meaning: '`canary status`: aborted by an operator' },
  canaryFrozen: {
    short: 'canary frozen',
    meaning:
      '`canary status`: frozen after a failed analysis (`--freeze-on-failure`): `canary promote` or `canary abort`',
  },
  canaryTimedOut: {
    short: 'canary timed out',
    meaning: '`canary status --watch`: still progressing when `--timeout` passed',
  },
  canaryRunnerDied: {
    short: 'canary runner died',
    meaning:
      '`canary status`: progressing, but the process running it is gone: `canary resume` or `canary abort`',
  },
  locked: {
    short: 'locked (try later)',
    meaning: 'another run holds the lock (`maintenance`, `rotate-keys --if-due`): try again later',
  },
  interrupted: { short: 'interrupted', meaning: 'interrupted (Ctrl-C, SIGTERM)' },
};

/** Every exit code with its meaning, lowest first. */
export function exitCodeTable(): Array<{ code: number; name: ExitCodeName; short: string; meaning: string }> {
  return (Object.keys(ExitCode) as ExitCodeName[])
    .map((name) => ({ code: ExitCode[name], name, ...EXIT_CODE_MEANINGS[name] }))
    .sort((a, b) => a.code - b.code);
}

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class IfmeshError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  /** What the operator should do next; shown after the message. */
  readonly hint: string | undefined;

  constructor(code: string, message: string, exitCode: ExitCodeValue, hint?: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

/** Bad flags, arguments or input files: exit 2. */
export class UsageError extends IfmeshError {
  constructor(message: string, hint?: string, code = 'usage') {
    super(code, message, ExitCode.usage, hint);
  }
}

export interface ConfigIssue {
  file: string | undefined;
  line: number | undefined;
  key: string | undefined;
  message: string;
  fix: string;
}

export function formatConfigIssue(issue: ConfigIssue): string {
  const where = [issue.file, issue.line].filter((p) => p !== undefined).join(':');
  const key = issue.key ? `${issue.key}: ` : '';
  return `${where ? `${where}: ` : ''}${key}${issue.message}; ${issue.fix}`;
}

/** The configuration does not validate: exit 2. Carries every issue found, not just the first. */
export class ConfigError extends IfmeshError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[], code = 'config_invalid', hint?: string) {
    const first = issues[0];
    const message = first ? formatConfigIssue(first) : 'invalid configuration';
    super(code, issues.length > 1 ? `${message} (and ${issues.length - 1} more)` : message, 2, hint);
    this.issues = issues;
  }
}

/**
 * PRODUCTION_MODE=true and a production rule fails (src/ops/preflight/production.ts): deploy refuses
 * before it starts anything, exit 2, one issue per failing rule.
 */
export class ProductionRefusedError extends ConfigError {
  constructor(issues: ConfigIssue[]) {
    super(issues, 'production_refused', "fix each, then run 'ifmesh preflight' to see them pass");
  }
}

/** A check ran and failed, or something is unhealthy: exit 1. */
export class CheckFailedError extends IfmeshError {
  constructor(message: string, hint?: string, code = 'check_failed') {
    super(code, message, ExitCode.checkFailed, hint);
  }
}

/** A state file ifmesh wrote no longer parses: exit 1, naming the file and what to do. */
export class StateCorruptError extends IfmeshError {
  readonly file: string;
  /** `why`: what is wrong with it, for a file that is not JSON (releases/current holds an id). */
  constructor(file: string, fix: string, why = 'not the JSON ifmesh wrote') {
    super('state_corrupt', `${file} is corrupted (${why})`, 1, fix);
    this.file = file;
  }
}

const WRITE_FAILURES: Record<string, [reason: string, fix: (dir: string) => string]> = {
  ENOSPC: [
    'no space left on its filesystem',
    (d) => `free space where it lives (df -h ${d}), then run the command again`,
  ],
  EDQUOT: [
    'the disk quota is used up',
    (d) => `free space within the quota of ${d}, then run the command again`,
  ],
  EROFS: [
    'its filesystem is read-only',
    (d) => `remount ${d} read-write, or pass --state-dir on a writable filesystem`,
  ],
  EACCES: ['permission denied', (d) => `run as the user that owns ${d}, or fix its permissions`],
  EPERM: ['permission denied', (d) => `run as the user that owns ${d}, or fix its permissions`],
};

/**
 * A state file could not be written (disk full, read-only filesystem, permissions): exit 1, naming
 * the file and the fix. What was being written is not half there: the temp file is removed and the
 * file keeps its previous content.
 */
export class StateWriteError extends IfmeshError {
  readonly file: string;
  constructor(file: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? '';
    const dir = file.slice(0, Math.max(1, file.lastIndexOf('/')));
    const [reason, fix] = WRITE_FAILURES[code] ?? [
      (cause as Error | undefined)?.message ?? String(cause),
      () => 'fix the cause, then run the command again',
    ];
    super(
      'state_unwritable',
      `cannot write ${file}: ${reason}`,
      1,
      `${fix(dir)}; ${file} was left as it was`,
    );
    this.file = file;
  }
}

/** A service or file we depend on cannot be reached: exit 3. */
export class UnreachableError extends IfmeshError {
  constructor(message: string, hint?: string, code = 'unreachable') {
    super(code, message, ExitCode.unreachable, hint);
  }
}

/** Credentials missing or refused: exit 4. */
export class UnauthorizedError extends IfmeshError {
  constructor(message: string, hint?: string, code = 'unauthorized') {
    super(code, message, ExitCode.unauthorized, hint);
  }
}

/** SIGINT or an abort: exit 130. */
export class InterruptedError extends IfmeshError {
  constructor(message = 'interrupted') {
    super('interrupted', message, ExitCode.interrupted);
  }
}

/** Anything that is not an IfmeshError is a bug or an unexpected environment failure: exit 1. */
export function toIfmeshError(err: unknown): IfmeshError {
  if (err instanceof IfmeshError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new IfmeshError('internal', message, ExitCode.checkFailed);
}

/** A server that cannot listen: a busy port is the operator's to fix (exit 2), anything else exit 3. */
export function listenFailure(err: unknown, host: string, port: number): IfmeshError {
  const e = err as { code?: string; message?: string };
  if (e.code === 'EADDRINUSE')
    return new UsageError(
      `port ${port} on ${host} is already in use`,
      'pick another --port or stop what holds it',
    );
  return new UnreachableError(`cannot listen on ${host}:${port}: ${e.message ?? String(err)}`);
}
