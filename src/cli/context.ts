import type { Readable, Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Trust } from '../clients/tls-trust.js';
import type { Clock } from '../util/clock.js';
import type { Exec } from '../util/exec.js';

export { type Clock, systemClock, type TimerHandle } from '../util/clock.js';
export { type Exec, type ExecOptions, type ExecResult, systemExec } from '../util/exec.js';

export type OutStream = Writable & { isTTY?: boolean };

/** All the I/O a command may do. bin/ builds the real one; tests build their own. */
export interface Context {
  env: Record<string, string | undefined>;
  cwd: string;
  stdin: Readable;
  stdout: OutStream;
  stderr: OutStream;
  clock: Clock;
  signal: AbortSignal;
  exec: Exec;
  /** Every HTTP call goes through it: undici's global one for real, a MockAgent where a remote cannot run. */
  dispatcher: Dispatcher;
  /**
   * The operator's CA (--ca, IFMESH_CA_FILE), when one is given: `dispatcher` already verifies
   * against it; WebSocket clients (agents, verify) pass `tls.ca` themselves.
   */
  tls?: Trust | undefined;
}
