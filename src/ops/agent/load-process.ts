// The processes of a multi-process `ifmesh load`: each share runs as `ifmesh load --worker` (this
// same entry script and node), reading its LoadWorkerSpec as one JSON line on stdin and speaking
// NDJSON on stdout — {"type":"ready"}, then after the parent's "go" line {"type":"tick"}s and one
// {"type":"result"}. A child is killed by its pid when the run is aborted or overruns its bound.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../paths.js';
import type { LoadWorkerSpec, WorkerHooks, WorkerResult } from './load.js';

type Message =
  | { type: 'ready'; mesh_formed_ms: number }
  | { type: 'finished' }
  | { type: 'tick'; sent: number; delivered: number }
  | { type: 'result'; result: WorkerResult };

const failed = (error: string): WorkerResult => ({
  pairs: [],
  signature_failures: 0,
  mesh_formed_ms: 0,
  elapsed_s: 0,
  error,
});

/** Runs one share in a child process; resolves with its result (an error result if it died). */
export function launchWorkerProcess(
  spec: LoadWorkerSpec,
  hooks: Omit<WorkerHooks, 'clock' | 'signal'>,
  signal?: AbortSignal,
): Promise<WorkerResult> {
  const bin = path.join(packageRoot(), 'dist/bin/ifmesh.js');
  const child = spawn(process.execPath, [bin, 'load', '--worker'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const boundMs = spec.formTimeoutMs + spec.durationMs + spec.pingTimeoutMs + 60_000;
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d.toString()).slice(-2_000);
  });
  const kill = () => child.kill('SIGKILL');
  const timer = setTimeout(kill, boundMs);
  signal?.addEventListener('abort', kill, { once: true });
  child.stdin.on('error', () => {});
  child.stdin.write(`${JSON.stringify(spec)}\n`);
  let result: WorkerResult | undefined;
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    let m: Message;
    try {
      m = JSON.parse(line) as Message;
    } catch {
      return;
    }
    if (m.type === 'ready') void hooks.ready(m.mesh_formed_ms).then(() => child.stdin.write('go\n'));
    else if (m.type === 'finished') void hooks.finished().then(() => child.stdin.write('stop\n'));
    else if (m.type === 'tick') hooks.tick({ sent: m.sent, delivered: m.delivered });
    else if (m.type === 'result') {
      result = m.result;
      // Its work is done: stdin closes, and a child that does not exit by itself soon is killed.
      child.stdin.end();
      setTimeout(kill, 10_000).unref();
    }
  });
  return new Promise((resolve) => {
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', kill);
      resolve(
        result ??
          failed(
            `load worker (pid ${child.pid}) ${sig ? `killed by ${sig}` : `exited ${code}`} without a result${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`,
          ),
      );
    });
  });
}

/** The child's side: one spec from stdin, the run, NDJSON on stdout. */
export async function serveWorker(
  input: NodeJS.ReadableStream,
  write: (line: string) => void,
  run: (spec: LoadWorkerSpec, hooks: Omit<WorkerHooks, 'clock'>) => Promise<WorkerResult>,
  signal?: AbortSignal,
): Promise<void> {
  const lines = createInterface({ input })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done)
    throw new Error('load --worker: no spec on stdin (it is started by `ifmesh load --processes N`)');
  const spec = JSON.parse(first.value) as LoadWorkerSpec;
  const result = await run(spec, {
    signal,
    ready: async (ms) => {
      write(JSON.stringify({ type: 'ready', mesh_formed_ms: ms }));
      const go = await lines.next();
      if (go.done) throw new Error('load --worker: the parent went away before the start');
    },
    tick: (t) => write(JSON.stringify({ type: 'tick', ...t })),
    finished: async () => {
      write(JSON.stringify({ type: 'finished' }));
      await lines.next();
    },
  });
  write(JSON.stringify({ type: 'result', result }));
}
