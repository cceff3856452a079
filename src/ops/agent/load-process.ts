// The processes of a multi-process `ifmesh load`: each share runs as `ifmesh load --worker` (this
// same entry script and node), reading its spec as one JSON line on stdin and speaking NDJSON on
// stdout — {"type":"ready"} (and, for --signaling-only, {"type":"registered"}), each answered by the
// parent's "go" line once every process is there, then {"type":"tick"}s, {"type":"finished"} and one
// {"type":"result"}. A child is killed by its pid when the run is aborted or overruns its bound.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../paths.js';
import type { LoadWorkerSpec, WorkerResult, WorkerTick } from './load.js';
import {
  emptyResult,
  type SignalingWorkerResult,
  type SignalingWorkerSpec,
} from './signaling-load-worker.js';

/** The barriers and progress of either kind of worker, as the parent sees them. */
export interface ProcessHooks {
  ready(ms: number): Promise<void>;
  registered?(r: { registered: number; register_ms: number }): Promise<void>;
  tick(t: WorkerTick): void;
  finished(): Promise<void>;
}

type Message =
  | { type: 'ready'; mesh_formed_ms: number }
  | { type: 'registered'; registered: number; register_ms: number }
  | { type: 'finished' }
  | { type: 'tick'; sent: number; delivered: number }
  | { type: 'result'; result: unknown };

/** Runs one WebRTC share in a child process; resolves with its result (an error result if it died). */
export function launchWorkerProcess(
  spec: LoadWorkerSpec,
  hooks: ProcessHooks,
  signal?: AbortSignal,
): Promise<WorkerResult> {
  return launch<WorkerResult>(spec, hooks, signal, (error) => ({
    pairs: [],
    signature_failures: 0,
    mesh_formed_ms: 0,
    elapsed_s: 0,
    error,
  }));
}

/** Runs one --signaling-only share in a child process; resolves with its result (errors if it died). */
export function launchSignalingWorkerProcess(
  spec: SignalingWorkerSpec,
  hooks: ProcessHooks,
  signal?: AbortSignal,
): Promise<SignalingWorkerResult> {
  return launch<SignalingWorkerResult>(spec, hooks, signal, (error) =>
    emptyResult(spec.to - spec.from, [error]),
  );
}

function launch<R>(
  spec: LoadWorkerSpec | SignalingWorkerSpec,
  hooks: ProcessHooks,
  signal: AbortSignal | undefined,
  failed: (error: string) => R,
): Promise<R> {
  const bin = path.join(packageRoot(), 'dist/bin/ifmesh.js');
  const child = spawn(process.execPath, [bin, 'load', '--worker'], { stdio: ['pipe', 'pipe', 'pipe'] });
  // A signaling share forms twice (open, then register) within formTimeoutMs each.
  const boundMs = 2 * spec.formTimeoutMs + spec.durationMs + spec.pingTimeoutMs + 60_000;
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d.toString()).slice(-2_000);
  });
  const kill = () => child.kill('SIGKILL');
  const timer = setTimeout(kill, boundMs);
  signal?.addEventListener('abort', kill, { once: true });
  child.stdin.on('error', () => {});
  child.stdin.write(`${JSON.stringify(spec)}\n`);
  let result: R | undefined;
  const go = () => child.stdin.write('go\n');
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    let m: Message;
    try {
      m = JSON.parse(line) as Message;
    } catch {
      return;
    }
    if (m.type === 'ready') void hooks.ready(m.mesh_formed_ms).then(go);
    else if (m.type === 'registered') void (hooks.registered?.(m) ?? Promise.resolve()).then(go);
    else if (m.type === 'finished') void hooks.finished().then(go);
    else if (m.type === 'tick') hooks.tick({ sent: m.sent, delivered: m.delivered });
    else if (m.type === 'result') {
      result = m.result as R;
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

/** The child's side: one spec from stdin, the run of its kind, NDJSON on stdout. */
export async function serveWorker(
  input: NodeJS.ReadableStream,
  write: (line: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const lines = createInterface({ input })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done)
    throw new Error('load --worker: no spec on stdin (it is started by `ifmesh load --processes N`)');
  const spec = JSON.parse(first.value) as LoadWorkerSpec | SignalingWorkerSpec;
  // Before the start, a parent gone is an error; at the end it only means nobody waits any more.
  const barrier =
    (message: object, required = true) =>
    async () => {
      write(JSON.stringify(message));
      const go = await lines.next();
      if (go.done && required) throw new Error('load --worker: the parent went away before the start');
    };
  const hooks = {
    signal,
    ready: (ms: number) => barrier({ type: 'ready', mesh_formed_ms: ms })(),
    registered: (r: { registered: number; register_ms: number }) => barrier({ type: 'registered', ...r })(),
    tick: (t: WorkerTick) => write(JSON.stringify({ type: 'tick', ...t })),
    finished: () => barrier({ type: 'finished' }, false)(),
  };
  // Each kind loads only its own code: a signaling-only worker never loads werift.
  const result =
    'mode' in spec && spec.mode === 'signaling'
      ? await (await import('./signaling-load-worker.js')).runSignalingWorker(spec, hooks)
      : await (await import('./load.js')).runLoadWorker(spec as LoadWorkerSpec, hooks);
  write(JSON.stringify({ type: 'result', result }));
}
