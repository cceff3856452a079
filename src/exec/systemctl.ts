// systemctl, journalctl and systemd-sysusers, run on the system whose systemd runs the fleet.
//
// The "systemd runner" is a command prefix put before each of them: empty in production (plain
// `systemctl …` on this host), `nsenter -t <container pid 1> -a` in the tests, which drive a real
// systemd booted in a container (test/helpers/systemd-container.ts), or `ssh host` anywhere else a
// prefix reaches a systemd. It is given as IFMESH_SYSTEMD_RUN (or `--systemd-run`) when the units
// are installed, and recorded in the state with the unit directory (src/ops/fleet/systemd.ts), so
// every later command (status, incident p1, down, logs) reaches the same systemd.
//
// The calls are synchronous: the supervisor's interface (is it running, start, stop) is, since for
// local processes it is a pid check; systemctl answers in milliseconds.
import { spawnSync } from 'node:child_process';
import { IfmeshError } from '../errors.js';

export interface SystemdRunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The unit properties ifmesh reads (`systemctl show -p …`). */
export interface UnitState {
  ActiveState: string;
  SubState: string;
  /** 0 when no main process runs; a pid in the target system's pid namespace. */
  MainPID: number;
  /** Restarts systemd made itself (Restart=on-failure) since the unit was last started by hand. */
  NRestarts: number;
  LoadState: string;
  UnitFileState: string;
}

const SHOWN: (keyof UnitState)[] = [
  'ActiveState',
  'SubState',
  'MainPID',
  'NRestarts',
  'LoadState',
  'UnitFileState',
];

function parseShown(block: string): UnitState {
  const kv = new Map(
    block
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  return {
    ActiveState: kv.get('ActiveState') ?? 'unknown',
    SubState: kv.get('SubState') ?? 'unknown',
    MainPID: Number(kv.get('MainPID') ?? 0) || 0,
    NRestarts: Number(kv.get('NRestarts') ?? 0) || 0,
    LoadState: kv.get('LoadState') ?? 'unknown',
    UnitFileState: kv.get('UnitFileState') ?? '',
  };
}

/** Splits IFMESH_SYSTEMD_RUN ("nsenter -t 4242 -a") into argv; no shell quoting is interpreted. */
export function parseRunPrefix(text: string | undefined): string[] {
  return (text ?? '').split(/\s+/).filter(Boolean);
}

export class SystemdRunner {
  constructor(
    readonly prefix: string[] = [],
    private readonly timeoutMs = 30_000,
  ) {}

  /** How a command is shown to people: the prefix and the program. */
  shown(program: string, args: string[]): string {
    return [...this.prefix, program, ...args].join(' ');
  }

  run(program: string, args: string[], input?: string): SystemdRunResult {
    const [file, ...rest] = [...this.prefix, program, ...args];
    const r = spawnSync(file!, rest, {
      encoding: 'utf8',
      timeout: this.timeoutMs,
      killSignal: 'SIGKILL',
      ...(input !== undefined ? { input } : { stdio: ['ignore', 'pipe', 'pipe'] }),
      maxBuffer: 16 * 1024 * 1024,
    });
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new IfmeshError(
        'systemd_unavailable',
        `${file} is not installed`,
        3,
        file === 'systemctl'
          ? 'install systemd (apt-get install systemd), or use --supervisor ifmesh'
          : `check IFMESH_SYSTEMD_RUN (${this.prefix.join(' ')})`,
      );
    return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Runs a command that must succeed; its stderr is the error. */
  must(program: string, args: string[], input?: string): string {
    const r = this.run(program, args, input);
    if (r.code !== 0)
      throw new IfmeshError(
        'systemd_failed',
        `${this.shown(program, args)} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`,
        1,
        /not been booted with systemd|Failed to connect to bus/.test(r.stderr)
          ? 'no systemd runs here: run this where systemd is PID 1, or set IFMESH_SYSTEMD_RUN to reach it (e.g. "nsenter -t PID -a")'
          : 'see `journalctl -xe` on that system',
      );
    return r.stdout;
  }

  systemctl(...args: string[]): string {
    return this.must('systemctl', args);
  }

  show(unit: string): UnitState {
    return this.showMany([unit])[unit]!;
  }

  /** `show` of several units in one call (systemctl prints one block per unit, in order). */
  showMany(units: string[]): Record<string, UnitState> {
    if (units.length === 0) return {};
    const out = this.must('systemctl', ['show', ...units, ...SHOWN.map((p) => `--property=${p}`)]);
    const blocks = out.split(/\n\s*\n/).filter((b) => b.trim() !== '');
    return Object.fromEntries(units.map((u, i) => [u, parseShown(blocks[i] ?? '')]));
  }

  /** The unit's main pid while it is active, else undefined. */
  mainPid(unit: string): number | undefined {
    const s = this.show(unit);
    return s.ActiveState === 'active' && s.MainPID > 0 ? s.MainPID : undefined;
  }

  /** The unit's last `lines` journal lines, without journald's prefix (what the process printed). */
  journal(unit: string, lines: number): string {
    const r = this.run('journalctl', ['-u', unit, '-n', String(lines), '--no-pager', '-o', 'cat']);
    return r.code === 0 ? r.stdout : '';
  }

  /** The argv that follows a unit's journal (`journalctl -f`), for a caller that streams it. */
  followArgv(units: string[], lines: number): string[] {
    return [
      ...this.prefix,
      'journalctl',
      ...units.flatMap((u) => ['-u', u]),
      '-n',
      String(lines),
      '-f',
      '--no-pager',
      '-o',
      'short-iso',
    ];
  }

  /** Creates system user `user` (and its group) unless it exists: systemd-sysusers, as packages do. */
  ensureUser(user: string, home: string): void {
    if (this.run('getent', ['passwd', user]).code === 0) return;
    this.must('systemd-sysusers', ['--inline', `u ${user} - "ifmesh services" ${home}`]);
  }

  /** The numeric uid and gid of `user` on the target system. */
  ids(user: string): { uid: number; gid: number } {
    const uid = Number(this.must('id', ['-u', user]).trim());
    const gid = Number(this.must('id', ['-g', user]).trim());
    return { uid, gid };
  }
}
