// Where each process's output is, for `ifmesh logs`: its log file under <state>/logs, or, for a
// systemd unit, its journal (journalctl -u, through the state's systemd runner).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { scanProcesses } from '../../state/processes.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Clock } from '../../util/clock.js';
import { readSystemdSettings, SystemdBackend } from './systemd.js';

export type LogSource = { name: string; file: string } | { name: string; unit: string };

/** Every process's log, by name: the state's log files and its units' journals. */
export function logSources(state: StateDir): LogSource[] {
  // A torn record must not keep anyone from reading the logs (its own log file is still listed).
  const units = scanProcesses(state)
    .records.filter((r) => r.supervisor === 'systemd' && r.unit)
    .map((r) => ({ name: r.name, unit: r.unit! }));
  const files = existsSync(state.logs)
    ? readdirSync(state.logs)
        .filter((f) => f.endsWith('.log'))
        .map((f) => f.slice(0, -4))
        .filter((n) => !units.some((u) => u.name === n))
        .map((n) => ({ name: n, file: state.logFile(n) }))
    : [];
  return [...units, ...files].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The logs `name` asks for: the one of that name, else every one whose name ends in `-name` — a
 * `deploy`-made fleet's processes are deploy-signaling-1, deploy-agent-agent-1 (a stage's,
 * staging-signaling-1), and at 3 a.m. `ifmesh logs signaling-1` should find them.
 */
export function selectLogSources(all: LogSource[], name: string): LogSource[] {
  const exact = all.filter((s) => s.name === name);
  return exact.length ? exact : all.filter((s) => s.name.endsWith(`-${name}`));
}

function backend(state: StateDir): SystemdBackend {
  const settings = readSystemdSettings(state);
  if (!settings) throw new Error(`${state.systemdSettings} is missing: run \`ifmesh systemd install\` again`);
  return new SystemdBackend(state, settings);
}

/** The last `n` lines of a log. */
export function lastLines(state: StateDir, src: LogSource, n: number): string[] {
  const text = 'unit' in src ? backend(state).tail(src.unit, n) : readFileSync(src.file, 'utf8');
  return text.split('\n').filter(Boolean).slice(-n);
}

/** Follows the units' journals (journalctl -f) until `signal` aborts; each line goes to `onLine`. */
export function followJournals(
  state: StateDir,
  srcs: { name: string; unit: string }[],
  onLine: (name: string, line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  if (srcs.length === 0) return Promise.resolve();
  const b = backend(state);
  return Promise.all(
    srcs.map(
      (s) =>
        new Promise<void>((resolve) => {
          const [file, ...args] = b.runner.followArgv([s.unit], 0);
          const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'ignore'] });
          let rest = '';
          child.stdout.on('data', (d: Buffer) => {
            const lines = (rest + d.toString()).split('\n');
            rest = lines.pop() ?? '';
            for (const l of lines) if (l) onLine(s.name, l);
          });
          const stop = () => child.kill('SIGTERM');
          signal.addEventListener('abort', stop, { once: true });
          child.on('close', () => {
            signal.removeEventListener('abort', stop);
            resolve();
          });
        }),
    ),
  ).then(() => undefined);
}

/**
 * `logs --follow`: the units' journals (journalctl -f) and the files' appended lines (read every
 * 250 ms), each line to `onLine`, until `signal` aborts.
 */
export async function followLogs(
  state: StateDir,
  sources: LogSource[],
  onLine: (name: string, line: string) => void,
  ctx: { clock: Clock; signal: AbortSignal },
): Promise<void> {
  const journals = followJournals(
    state,
    sources.filter((s) => 'unit' in s),
    onLine,
    ctx.signal,
  );
  const files = sources.filter((s) => 'file' in s);
  const offsets = new Map(files.map((s) => [s.name, statSync(s.file).size]));
  while (!ctx.signal.aborted) {
    await ctx.clock.sleep(250, ctx.signal).catch(() => {});
    for (const s of files) {
      const size = statSync(s.file).size;
      const from = offsets.get(s.name) ?? 0;
      if (size <= from) continue;
      const chunk = readFileSync(s.file).subarray(from, size).toString('utf8');
      offsets.set(s.name, size);
      for (const line of chunk.split('\n').filter(Boolean)) onLine(s.name, line);
    }
  }
  await journals;
}
