// `ifmesh lab`: builds the NAT lab of plan.ts, starts coturn, signaling and the witness in its
// public namespace, and takes it all down again. Everything it makes is recorded in the lab's state
// file as it is made (namespaces, pids, files), so `down` from another process — or after an `up`
// that failed half-way — removes exactly that: processes by pid (only while they still live in one
// of the lab's namespaces, so a reused pid is never signalled), namespaces by name, then the files.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import {
  CheckFailedError,
  IfmeshError,
  UnauthorizedError,
  UnreachableError,
  UsageError,
} from '../../errors.js';
import { isAlive } from '../../exec/pid.js';
import { turnserverArgs, writeTurnserverConfig } from '../../exec/turnserver.js';
import { packageRoot } from '../../paths.js';
import { readStateJson, writeStateJson } from '../../state/json-file.js';
import { waitFor } from '../../util/wait.js';
import type { OpContext } from '../shared.js';
import { checkLabName, type LabPlan, type LabSpec, labNamespacePrefix, planLab } from './plan.js';

export interface LabProcess {
  name: string;
  pid: number;
  namespace: string;
  log: string;
}

/** The lab's state file: what exists, so any process can take it down. */
export interface LabState {
  name: string;
  dir: string;
  created_at: string;
  status: 'building' | 'up' | 'failed';
  plan: Omit<LabPlan, 'commands'>;
  turn_credentials: { username: string; password: string };
  witness_api_key: string;
  /** The lab signaling's SIGNALING_ADMIN_TOKEN (/admin/*: failover, key rotation in the lab). */
  admin_token: string;
  processes: LabProcess[];
}

export interface LabUpReport {
  lab: LabState;
  dry_run: false;
  elapsed_ms: number;
}

export interface LabDryRun {
  dry_run: true;
  plan: LabPlan;
  processes: { name: string; namespace: string; command: string[] }[];
}

export interface LabDownReport {
  name: string;
  stopped: { name: string; pid: number }[];
  namespaces_removed: string[];
  files_removed: string[];
  elapsed_ms: number;
}

export interface LabStatusReport {
  name: string;
  exists: boolean;
  state_file: string;
  lab: LabState | undefined;
  namespaces: { namespace: string; present: boolean }[];
  processes: (LabProcess & { running: boolean })[];
  healthy: boolean;
}

const STATE_FILE = 'lab.json';
const TURN_USER = 'lab';

/** Where labs keep their files: $IFMESH_LAB_DIR, else /run/ifmesh-lab (gone at reboot, like namespaces). */
export function labRoot(env: Record<string, string | undefined>): string {
  return path.resolve(env.IFMESH_LAB_DIR ?? '/run/ifmesh-lab');
}

export function labDir(env: Record<string, string | undefined>, name: string): string {
  return path.join(labRoot(env), checkLabName(name));
}

export class LabNeedsRootError extends UnauthorizedError {
  constructor(what: string) {
    super(
      `ifmesh lab ${what} needs root: it creates network namespaces, veths and nftables rules (CAP_SYS_ADMIN, CAP_NET_ADMIN)`,
      `run it as root: sudo ifmesh lab ${what}`,
      'lab_needs_root',
    );
  }
}

export function requireRoot(what: string, uid = process.getuid?.()): void {
  if (uid !== 0) throw new LabNeedsRootError(what);
}

async function run(ctx: Pick<OpContext, 'exec'>, argv: string[], timeoutMs = 10_000): Promise<string> {
  let r: Awaited<ReturnType<OpContext['exec']>>;
  try {
    r = await ctx.exec(argv[0]!, argv.slice(1), { timeoutMs });
  } catch (err) {
    const pkg = argv[0] === 'nft' || argv.includes('nft') ? 'nftables' : 'iproute2';
    throw new UnreachableError(
      `${argv[0]} could not be started (${(err as Error).message})`,
      `apt-get install ${pkg}`,
    );
  }
  if (r.code !== 0)
    throw new CheckFailedError(
      `'${argv.join(' ')}' failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  return r.stdout;
}

/** The lab's namespaces that exist now (`ip netns list`), by prefix. */
async function existingNamespaces(ctx: Pick<OpContext, 'exec'>, prefix: string): Promise<string[]> {
  const out = await run(ctx, ['ip', 'netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(/\s/)[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

/** The network namespace a process lives in, as the inode /proc/PID/ns/net names; undefined if gone. */
function processNetns(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}/ns/net`).ino;
  } catch {
    return undefined;
  }
}

function namespaceInode(ns: string): number | undefined {
  try {
    return statSync(`/run/netns/${ns}`).ino;
  } catch {
    return undefined;
  }
}

/** Alive, and inside one of the lab's namespaces: the pid is still ours to signal. */
function ownedByLab(pid: number, namespaces: string[]): boolean {
  if (!isAlive(pid)) return false;
  const ino = processNetns(pid);
  return ino !== undefined && namespaces.some((ns) => namespaceInode(ns) === ino);
}

export function readLabState(dir: string): LabState | undefined {
  return readStateJson<LabState>(
    path.join(dir, STATE_FILE),
    (v) => typeof v === 'object' && v !== null && Array.isArray((v as LabState).processes),
    `remove the lab by name (ifmesh lab down --name ${path.basename(dir)}): it also finds its namespaces without the file`,
  );
}

function writeLabState(state: LabState): void {
  writeStateJson(path.join(state.dir, STATE_FILE), state, 0o600);
}

interface ProcessSpec {
  name: string;
  namespace: string;
  command: string[];
  env?: Record<string, string>;
  /** Ready once these listen inside the namespace (`ss`): proto, address, port. */
  listens: ['udp' | 'tcp', string, number][];
}

function processSpecs(
  plan: LabPlan,
  dir: string,
  state: Pick<LabState, 'witness_api_key' | 'admin_token'>,
): ProcessSpec[] {
  const ns = plan.public.namespace;
  const bin = path.join(packageRoot(), 'dist/bin/ifmesh.js');
  const node = process.execPath;
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    IF_WITNESS_API_KEY: state.witness_api_key,
    PRODUCTION_MODE: 'false',
  };
  return [
    ...plan.turn.map((t) => ({
      name: t.name,
      namespace: ns,
      command: [
        'turnserver',
        ...turnserverArgs({
          port: t.port,
          relayPorts: t.relayPorts,
          listenIp: t.addresses[0],
          configFile: path.join(dir, `${t.name}.conf`),
        }),
        // Two listening addresses: RFC 5780 NAT behaviour discovery works against it.
        `--listening-ip=${t.addresses[1]}`,
        `--pidfile=${path.join(dir, `${t.name}.pid`)}`,
        // Sessions, allocations and their errors in the log: what a lab is for.
        '--verbose',
      ],
      listens: [
        ['udp', t.addresses[0], t.port],
        ['udp', t.addresses[1], t.port],
      ] as ProcessSpec['listens'],
    })),
    {
      name: 'witness',
      namespace: ns,
      command: [
        node,
        bin,
        'witness',
        'serve',
        '--host',
        plan.witness.address,
        '--port',
        String(plan.witness.port),
        '--db',
        path.join(dir, 'witness.db'),
        '--state-dir',
        dir,
      ],
      env,
      listens: [['tcp', plan.witness.address, plan.witness.port]],
    },
    {
      name: 'signaling',
      namespace: ns,
      command: [
        node,
        bin,
        'signaling',
        'serve',
        '--host',
        plan.signaling.address,
        '--port',
        String(plan.signaling.port),
        '--instance-id',
        'lab-signaling',
        '--state-dir',
        dir,
      ],
      // The lab's coturns as its ICE servers: /config serves them, so troubleshoot probes and
      // failover turn act on the lab's TURN servers, not on public defaults unreachable from here.
      env: {
        ...env,
        IF_WITNESS_ENDPOINT: plan.witness.url,
        STUN_SERVERS: plan.turn.map((t) => t.stunUrl).join(','),
        TURN_SERVERS: plan.turn.map((t) => t.url).join(','),
        SIGNALING_ADMIN_TOKEN: state.admin_token,
      },
      listens: [['tcp', plan.signaling.address, plan.signaling.port]],
    },
  ];
}

async function listening(
  ctx: Pick<OpContext, 'exec'>,
  ns: string,
  [proto, addr, port]: ProcessSpec['listens'][number],
): Promise<boolean> {
  const r = await ctx.exec(
    'ip',
    ['netns', 'exec', ns, 'ss', '-Hln', proto === 'udp' ? '-u' : '-t', `src ${addr}:${port}`],
    { timeoutMs: 5_000 },
  );
  return r.code === 0 && r.stdout.trim() !== '';
}

function startDetached(spec: ProcessSpec, log: string, cwd: string): ChildProcess {
  const fd = openSync(log, 'a', 0o600);
  try {
    // `ip netns exec` enters the namespace and execs the command: the pid is the server's own.
    const child = spawn('ip', ['netns', 'exec', spec.namespace, ...spec.command], {
      cwd,
      env: spec.env ?? { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

export interface LabUpOptions extends LabSpec {
  dryRun: boolean;
  progress?: (line: string) => void;
}

/** Builds the lab and starts its servers; on any failure it takes down what it made and throws. */
export async function labUp(
  o: LabUpOptions,
  ctx: Pick<OpContext, 'exec' | 'env' | 'clock'>,
): Promise<LabUpReport | LabDryRun> {
  const plan = planLab(o);
  const dir = labDir(ctx.env, o.name);
  if (o.dryRun)
    return {
      dry_run: true,
      plan,
      processes: processSpecs(plan, dir, { witness_api_key: '<generated>', admin_token: '<generated>' }).map(
        (p) => ({
          name: p.name,
          namespace: p.namespace,
          command: ['ip', 'netns', 'exec', p.namespace, ...p.command],
        }),
      ),
    };
  requireRoot('up');
  const t0 = ctx.clock.now();
  const existing = readLabState(dir);
  const leftover = await existingNamespaces(ctx, labNamespacePrefix(o.name));
  if (existing || leftover.length)
    throw new UsageError(
      `lab '${o.name}' already exists (${existing ? path.join(dir, STATE_FILE) : leftover.join(', ')})`,
      `ifmesh lab down --name ${o.name}, or pick another --name`,
      'lab_exists',
    );
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { commands, ...shape } = plan;
  const state: LabState = {
    name: o.name,
    dir,
    created_at: new Date(ctx.clock.now()).toISOString(),
    status: 'building',
    plan: shape,
    turn_credentials: { username: TURN_USER, password: randomBytes(12).toString('hex') },
    witness_api_key: randomBytes(16).toString('hex'),
    admin_token: randomBytes(16).toString('hex'),
    processes: [],
  };
  writeLabState(state);
  try {
    for (const argv of commands) await run(ctx, argv);
    for (const t of plan.turn)
      writeTurnserverConfig(path.join(dir, `${t.name}.conf`), {
        user: TURN_USER,
        password: state.turn_credentials.password,
        realm: 'ifmesh-lab',
      });
    // Started together, then waited for together: each node process takes a second or two to start.
    const specs = processSpecs(plan, dir, state);
    const children = specs.map((spec) => {
      const log = path.join(dir, `${spec.name}.log`);
      const child = startDetached(spec, log, dir);
      if (!child.pid)
        throw new UnreachableError(`${spec.name} could not be started`, 'apt-get install iproute2');
      state.processes.push({ name: spec.name, pid: child.pid, namespace: spec.namespace, log });
      return { spec, pid: child.pid, log };
    });
    writeLabState(state);
    await Promise.all(
      children.map(async ({ spec, pid, log }) => {
        const up = await waitFor(
          async () => {
            if (!isAlive(pid)) return true;
            for (const l of spec.listens) if (!(await listening(ctx, spec.namespace, l))) return false;
            return true;
          },
          { timeoutMs: 20_000, intervalMs: 50 },
          ctx.clock,
        );
        if (!up || !isAlive(pid))
          throw new CheckFailedError(
            `${spec.name} did not start in ${spec.namespace}: ${tail(log)}`,
            spec.name.startsWith('coturn') ? 'apt-get install coturn' : `see ${log}`,
          );
        o.progress?.(`${spec.name} up in ${spec.namespace} (pid ${pid})`);
      }),
    );
    state.status = 'up';
    writeLabState(state);
    return { lab: state, dry_run: false, elapsed_ms: ctx.clock.now() - t0 };
  } catch (err) {
    state.status = 'failed';
    writeLabState(state);
    await labDown({ name: o.name }, ctx).catch(() => {});
    throw err instanceof IfmeshError ? err : new CheckFailedError(`lab up failed: ${(err as Error).message}`);
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-600).trim() || '(no output)';
  } catch {
    return '(no log)';
  }
}

/**
 * Stops the lab's processes (by pid, and anything else still inside its namespaces, e.g. agents
 * started with `lab run`), deletes its namespaces (with their veths, bridge and nft rules), then
 * its files. Works from the state file, and from the namespace names when that is gone.
 */
export async function labDown(
  o: { name: string },
  ctx: Pick<OpContext, 'exec' | 'env' | 'clock'>,
): Promise<LabDownReport> {
  requireRoot('down');
  const t0 = ctx.clock.now();
  const dir = labDir(ctx.env, o.name);
  let state: LabState | undefined;
  try {
    state = readLabState(dir);
  } catch {
    // A corrupt state file: the namespaces are found by name, and the directory goes anyway.
  }
  const namespaces = [
    ...new Set([
      ...(state?.plan.namespaces ?? []),
      ...(await existingNamespaces(ctx, labNamespacePrefix(o.name))),
    ]),
  ];
  const present = namespaces.filter((ns) => namespaceInode(ns) !== undefined);
  // The recorded servers, then whatever else runs in the lab's namespaces.
  const targets = new Map<number, string>();
  for (const p of state?.processes ?? []) if (ownedByLab(p.pid, present)) targets.set(p.pid, p.name);
  for (const ns of present) {
    const r = await ctx.exec('ip', ['netns', 'pids', ns], { timeoutMs: 5_000 });
    for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number))
      if (!targets.has(pid)) targets.set(pid, `pid ${pid} in ${ns}`);
  }
  const stopped: LabDownReport['stopped'] = [];
  for (const pid of targets.keys()) signal(pid, 'SIGTERM');
  await waitFor(
    () => [...targets.keys()].every((pid) => !isAlive(pid)),
    { timeoutMs: 3_000, intervalMs: 25 },
    ctx.clock,
  );
  for (const [pid, name] of targets) {
    if (isAlive(pid) && ownedByLab(pid, present)) signal(pid, 'SIGKILL');
    stopped.push({ name, pid });
  }
  await waitFor(
    () => [...targets.keys()].every((pid) => !isAlive(pid)),
    { timeoutMs: 2_000, intervalMs: 25 },
    ctx.clock,
  );
  const removed: string[] = [];
  for (const ns of present) {
    await run(ctx, ['ip', 'netns', 'del', ns]);
    removed.push(ns);
  }
  const files: string[] = [];
  if (existsSync(dir)) {
    rmSync(dir, { recursive: true, force: true });
    files.push(dir);
  }
  const still = [...targets.keys()].filter(isAlive);
  if (still.length)
    throw new CheckFailedError(`lab '${o.name}': pid ${still.join(', ')} still running after SIGKILL`);
  return {
    name: o.name,
    stopped,
    namespaces_removed: removed,
    files_removed: files,
    elapsed_ms: ctx.clock.now() - t0,
  };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

export async function labStatus(
  o: { name: string },
  ctx: Pick<OpContext, 'exec' | 'env'>,
): Promise<LabStatusReport> {
  requireRoot('status');
  const dir = labDir(ctx.env, o.name);
  const state = readLabState(dir);
  const live = await existingNamespaces(ctx, labNamespacePrefix(o.name));
  const names = [...new Set([...(state?.plan.namespaces ?? []), ...live])];
  const namespaces = names.map((namespace) => ({ namespace, present: live.includes(namespace) }));
  const processes = (state?.processes ?? []).map((p) => ({ ...p, running: ownedByLab(p.pid, live) }));
  return {
    name: o.name,
    exists: Boolean(state) || live.length > 0,
    state_file: path.join(dir, STATE_FILE),
    lab: state,
    namespaces,
    processes,
    healthy:
      state?.status === 'up' && namespaces.every((n) => n.present) && processes.every((p) => p.running),
  };
}

export interface LabRunOptions {
  name: string;
  host: string;
  command: string[];
  stdin: Readable | 'inherit';
  stdout: Writable;
  stderr: Writable;
}

/** The namespace of a lab node: h1…hN, r1…rN or pub. */
export function labNamespace(state: LabState, node: string): string {
  const ns = `${labNamespacePrefix(state.name)}${node}`;
  if (!state.plan.namespaces.includes(ns))
    throw new UsageError(
      `lab '${state.name}' has no host '${node}'`,
      `one of ${state.plan.namespaces.map((n) => n.slice(labNamespacePrefix(state.name).length)).join(', ')}`,
    );
  return ns;
}

/**
 * The lab's configuration as an ifmesh command run inside it reads it: its signaling, witness and
 * coturns, and the credentials to them. `lab run` sets it over the caller's environment (a command
 * in the lab reaches only the lab's servers), so `ifmesh lab run pub -- ifmesh failover turn …`
 * acts on the lab with nothing else set; `lab run h1 -- env VAR=… CMD` overrides one.
 */
export function labEnv(state: LabState): Record<string, string> {
  const p = state.plan;
  return {
    IFMESH_SIGNALING_URL: p.signaling.url,
    IF_WITNESS_ENDPOINT: p.witness.url,
    IF_WITNESS_API_KEY: state.witness_api_key,
    STUN_SERVERS: p.turn.map((t) => t.stunUrl).join(','),
    TURN_SERVERS: p.turn.map((t) => t.url).join(','),
    TURN_USERNAME: state.turn_credentials.username,
    TURN_PASSWORD: state.turn_credentials.password,
    // A lab built before the lab signaling had an admin token has none to give.
    ...(state.admin_token ? { SIGNALING_ADMIN_TOKEN: state.admin_token } : {}),
  };
}

/** Runs a command inside a lab host's namespace (`ip netns exec`); resolves with its exit code. */
export async function labRun(o: LabRunOptions, ctx: Pick<OpContext, 'env' | 'signal'>): Promise<number> {
  requireRoot('run');
  if (o.command.length === 0) throw new UsageError('lab run needs a command', 'ifmesh lab run h1 -- ip addr');
  const state = readLabState(labDir(ctx.env, o.name));
  if (!state)
    throw new UsageError(`lab '${o.name}' is not up`, `ifmesh lab up --name ${o.name}`, 'lab_not_found');
  const ns = labNamespace(state, o.host);
  const child = spawn('ip', ['netns', 'exec', ns, ...o.command], {
    stdio: [o.stdin === 'inherit' ? 'inherit' : 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...ctx.env, ...labEnv(state) } as NodeJS.ProcessEnv,
  });
  if (o.stdin !== 'inherit' && child.stdin) o.stdin.pipe(child.stdin).on('error', () => {});
  child.stdout!.pipe(o.stdout, { end: false });
  child.stderr!.pipe(o.stderr, { end: false });
  const onAbort = () => child.kill('SIGTERM');
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  return new Promise<number>((resolve, reject) => {
    child.once('error', (err) =>
      reject(
        new UnreachableError(`ip netns exec could not start: ${err.message}`, 'apt-get install iproute2'),
      ),
    );
    child.once('close', (code, sig) => {
      ctx.signal.removeEventListener('abort', onAbort);
      resolve(code ?? (sig ? 128 + 15 : 1));
    });
  });
}
