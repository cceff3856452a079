import { type Command, Option } from 'commander';
import { parseStage } from '../config/stage.js';
import { UsageError } from '../errors.js';
import { formatDuration } from '../ui/units.js';
import { type DurationUnit, parseDuration } from '../util/duration.js';

export interface ConfigFlags {
  config?: string;
  set?: Record<string, string>;
  /** --stage NAME, validated: the env file and state directory of that environment. */
  stage?: string;
}

function collectSet(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0)
    throw new UsageError(
      `--set expects KEY=VALUE, got a value without "="`,
      'e.g. --set SIGNALING_PORT=9443',
    );
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/**
 * The flags many commands share, each declared once: same name, argument and help everywhere. A
 * command adds them with withFlags(cmd, …) or, inside an option chain, .addOption(shared('…')).
 */
const SHARED = {
  'state-dir': () =>
    new Option(
      '--state-dir <dir>',
      'ifmesh state directory: the local stack, pids, logs, releases, witness spool (default .ifmesh or $IFMESH_STATE_DIR)',
    ),
  signaling: () =>
    new Option(
      '--signaling <urls>',
      'signaling instances, comma-separated [NAME=]URL, ws(s):// or http(s):// (default $IFMESH_SIGNALING_URL, SIGNALING_URLS, the instances in the state dir, or the config)',
    ),
  witness: () =>
    new Option(
      '--witness <url>',
      "IF.witness base URL (default IF_WITNESS_ENDPOINT, else the state dir's witness)",
    ),
  config: () =>
    new Option(
      '-c, --config <file>',
      'env file to read (default: config/webrtc-production.env if present, or $IFMESH_CONFIG)',
    ),
  set: () =>
    new Option(
      '--set <KEY=VALUE>',
      'override one key; repeatable; beats the environment and the file',
    ).argParser(collectSet),
  stage: () =>
    new Option(
      '--stage <name>',
      'the named environment to act on: its env file config/webrtc-<name>.env (unless --config) and its state dir <state-dir>/stages/<name>/; production implies PRODUCTION_MODE=true (default: the unnamed environment)',
    ).argParser(parseStage),
  json: () => new Option('--json', 'print one JSON document on stdout'),
  supervisor: () =>
    new Option(
      '--supervisor <kind>',
      "what keeps the services running: ifmesh (`ifmesh supervise`, restarts a dead one within seconds), systemd (units, Restart=on-failure; see `ifmesh systemd install`) or none (default: systemd when the state dir's services already run as units, else ifmesh)",
    ).choices(['ifmesh', 'systemd', 'none']),
  'unit-dir': () =>
    new Option(
      '--unit-dir <dir>',
      'where systemd unit files are written (default: as recorded at install, else /etc/systemd/system)',
    ),
  'service-user': () =>
    new Option(
      '--service-user <user>',
      'the dedicated system user the systemd units run as, created if missing (default: ifmesh)',
    ),
} as const;

export type SharedFlag = keyof typeof SHARED;
export const SHARED_FLAGS = Object.keys(SHARED) as SharedFlag[];

export function shared(flag: SharedFlag): Option {
  return SHARED[flag]();
}

/** What commands that look at the running mesh take: where it is, how it is configured, --json. */
export const MESH_FLAGS = [
  'signaling',
  'witness',
  'state-dir',
  'config',
  'set',
  'json',
] as const satisfies readonly SharedFlag[];

/** Adds the named shared flags to `cmd`. */
export function withFlags(cmd: Command, ...flags: SharedFlag[]): Command {
  for (const f of flags) cmd.addOption(shared(f));
  return cmd;
}

/** --config FILE and --set KEY=VALUE, shared by every command that reads the mesh configuration. */
export function withConfigOptions(cmd: Command): Command {
  return withFlags(cmd, 'config', 'set');
}

export function withJson(cmd: Command): Command {
  return withFlags(cmd, 'json');
}

/** A whole-number flag within [min, max]; anything else is a usage error naming the flag. */
export function intFlag(value: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${flag} ${value} must be a whole number ${range}`);
  }
  return n;
}

const UNIT_NAMES: Record<DurationUnit, string> = {
  ms: 'milliseconds',
  s: 'seconds',
  m: 'minutes',
  h: 'hours',
  d: 'days',
  w: 'weeks',
};

/** Node's longest timer: a wait above it would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Every duration flag: 500ms, 5s, 2m, 1h, 7d, 1h30m (src/util/duration.ts), a bare number counting
 * in `bare` (milliseconds by default), within [min, max] (default: 1 ms to Node's longest timer).
 * Anything else is a usage error (exit 2) naming the flag.
 */
export function durationFlag(
  value: string,
  flag: string,
  {
    min = 1,
    max = MAX_TIMER_MS,
    bare = 'ms',
  }: { min?: number; max?: number; bare?: DurationUnit | null } = {},
): number {
  const ms = parseDuration(value, bare);
  if (ms === undefined)
    throw new UsageError(
      `${flag} ${value} is not a duration`,
      `use a number with a unit, e.g. ${flag} 500ms, 30s, 5m or 1h${bare ? ` (a bare number is in ${UNIT_NAMES[bare]})` : ''}`,
    );
  if (ms < min || ms > max)
    throw new UsageError(
      `${flag} ${value} is out of range: ${max === MAX_TIMER_MS ? `at least ${formatDuration(min)}` : `from ${formatDuration(min)} to ${formatDuration(max)}`}`,
    );
  return ms;
}

/**
 * `--max-rtt-p95`: where the signed message exchange (`up`, `verify`) stops calling the mesh
 * verified. The runbook's delivery target by default; a slow or loaded machine may need more.
 */
export function withRttBudget(cmd: Command): Command {
  return cmd.option(RTT_BUDGET_FLAG.flags, RTT_BUDGET_FLAG.description, RTT_BUDGET_FLAG.default);
}

/** withRttBudget's flag, as a definition's flag (src/cli/define.ts). */
export const RTT_BUDGET_FLAG = {
  flags: '--max-rtt-p95 <duration>',
  description: 'fail the signed message exchange above this RTT p95 (the runbook target)',
  default: '100ms',
};

/**
 * The flags of every command that starts temporary agents for a check (verify, load, failover,
 * maintenance weekly): their STUN servers, loopback-only gathering, and trust of a self-signed wss://.
 */
export const TEMP_AGENT_FLAGS = [
  { flags: '--stun <urls>', description: 'STUN URLs for the temporary agents (default STUN_SERVERS)' },
  { flags: '--loopback', description: 'the temporary agents gather only 127.0.0.1 candidates' },
  { flags: '--insecure', description: 'accept a self-signed wss:// certificate' },
] as const;

/** `--max-rtt-p95`'s value in ms (0 allowed: every exchange fails, which tests use). */
export function rttBudgetMs(value: string): number {
  return durationFlag(value, '--max-rtt-p95', { min: 0 });
}
