#!/usr/bin/env node
import { createRequire } from 'node:module';
import { systemClock, systemExec } from '../src/cli/context.js';
import { runCli } from '../src/cli/run.js';

// The only place that touches process-wide state: builds the real context and sets the exit code.
const require = createRequire(import.meta.url);
const controller = new AbortController();
let interrupts = 0;
const onSignal = (signal: NodeJS.Signals) => {
  interrupts += 1;
  // A second Ctrl-C means "now": skip the graceful path.
  if (interrupts > 1) process.exit(130);
  controller.abort(new Error(`received ${signal}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

// A reader that stops early (`ifmesh logs | head -1`) closes our stdout: like git, end quietly with
// exit 0. The command is told to stop as if interrupted, so it cleans up and writes nothing more;
// a closed stderr is ignored (there is nobody left to tell).
let stdoutClosed = false;
const onStreamError = (stream: 'stdout' | 'stderr') => (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  if (stream === 'stderr' || stdoutClosed) return;
  stdoutClosed = true;
  controller.abort(new Error('stdout closed'));
};
process.stdout.on('error', onStreamError('stdout'));
process.stderr.on('error', onStreamError('stderr'));

const code = await runCli(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  clock: systemClock,
  signal: controller.signal,
  exec: systemExec,
  // Loaded on first use: `ifmesh --help` and most commands never make an HTTP call.
  get dispatcher() {
    return (require('undici') as typeof import('undici')).getGlobalDispatcher();
  },
});
if (stdoutClosed) process.exit(0);
if (controller.signal.aborted && code === 130) {
  // Whatever the interrupted command left pending (a stdin read, a socket) must not keep us alive.
  process.exit(130);
}
process.exitCode = code;
// Work is done and cleaned up; anything still holding the loop (werift keeps TURN refresh and DTLS
// timers for minutes) must not keep the process alive. unref: a clean exit does not wait for it.
setTimeout(() => process.exit(code), 250).unref();
