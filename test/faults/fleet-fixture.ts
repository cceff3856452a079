// What the "dependency fails mid-procedure" scenarios share (issue 23.2): an operator's project
// (agent configs and keys), coturn, and a witness PROCESS that a scenario can SIGKILL and start again
// on the same port, database and signing key; fleets deployed with `ifmesh deploy` into state
// directories of their own, stopped (`ifmesh down`) after each test; and the audit-trail accounting
// every scenario reports: what the state's producers (the procedure, the agents, the instances)
// left waiting in their spools while the witness was away, and whether the witness holds every one
// of those events once it is back — the "events lost" figure.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { openStateDir } from '../../src/state/state-dir.js';
import { BIN, spawnCli, tempDir, testTmp } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { writeAgentConfigs } from '../helpers/deploy.js';
import { trackPid } from '../helpers/pids.js';
import { freePort, isStopped, type Service, startWitnessProcess } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY } from '../helpers/witness.js';

export const AGENTS = ['agent-f1', 'agent-f2', 'agent-f3'];
// The RTT gate depends on this machine's load, not on what these scenarios prove.
export const RTT_BUDGET = ['--threshold', 'rtt_p2p_p95_ms=10000'];
// A canary window long enough for its pairs to connect on a loaded machine.
export const WINDOW = ['--monitor', '10s', '--interval', '500ms'];

/** The witness process the fleets log to: killed and started again by the scenarios. */
export interface KillableWitness {
  url: string;
  db: string;
  svc: () => Service | undefined;
  kill(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Registers the file's hooks (like test/e2e/rollout-fixture.ts): the project, coturn and the witness
 * before all tests, `ifmesh down` of every state `deploy()` made after each, the rest after all.
 */
export function faultFleet() {
  const { dir, cleanup } = tempDir();
  const env: Record<string, string> = {};
  const states: string[] = [];
  let witnessSvc: Service | undefined;
  let turnPort = 0;
  let stopTurn: () => Promise<void> = async () => {};
  const db = path.join(dir, 'witness.db');
  const key = path.join(dir, 'witness.key');
  let port = 0;
  const witness: KillableWitness = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    db,
    svc: () => witnessSvc,
    async kill() {
      witnessSvc?.kill('SIGKILL');
      await witnessSvc?.exited;
      witnessSvc = undefined;
    },
    async start() {
      // The same port, database and key: the fleet's trust in its key holds across the restart.
      witnessSvc = await startWitnessProcess(db, ['--port', String(port), '--key', key]);
    },
  };

  beforeAll(async () => {
    const turn = await startCoturn();
    turnPort = Number(/:(\d+)$/.exec(turn.stunUrl)![1]);
    stopTurn = () => turn.stop();
    port = await freePort();
    await witness.start();
    Object.assign(env, {
      STUN_SERVERS: turn.stunUrl,
      IF_WITNESS_ENDPOINT: witness.url,
      IF_WITNESS_API_KEY: API_KEY,
      IFMESH_OPERATOR: 'tester',
      SIGNALING_HOST: '127.0.0.1',
    });
    await writeAgentConfigs(dir, AGENTS);
  }, 60_000);
  afterEach(async () => {
    // A scenario that left the witness down leaves it down for nobody else.
    if (!witnessSvc) await witness.start();
    for (const s of states.splice(0))
      await spawnCli(['down', '--state-dir', s], { cwd: dir, timeoutMs: 60_000 });
  }, 90_000);
  afterAll(async () => {
    await witnessSvc?.stop();
    await stopTurn();
    cleanup();
  });

  /** `ifmesh <args>` in the project, with the fleet's environment. */
  const raw = (args: string[], o: { timeoutMs?: number; env?: Record<string, string> } = {}) =>
    spawnCli(args, { cwd: dir, env: { ...env, ...o.env }, timeoutMs: o.timeoutMs ?? 120_000 });
  /** `ifmesh <args> --state-dir <state>`. */
  const cli = (args: string[], state: string, o: { timeoutMs?: number; env?: Record<string, string> } = {}) =>
    raw([...args, '--state-dir', state], o);

  const ports = new Map<string, { base: number; nginx: number }>();
  /** The argv of a deploy into `state` (`instances` instances, on the ports of its first deploy). */
  async function deployArgs(state: string, instances: number, label: string): Promise<string[]> {
    if (!ports.has(state))
      // deploy puts its own Redis (when it starts one) on the port after the instances'.
      ports.set(state, { base: await freePortRange(instances + 1), nginx: await freePort() });
    const { base, nginx } = ports.get(state)!;
    return [
      'deploy',
      '--instances',
      String(instances),
      '--base-port',
      String(base),
      '--nginx-port',
      String(nginx),
      '--label',
      label,
      '--state-dir',
      state,
    ];
  }

  /**
   * `ifmesh <args>` as a child process the test watches (its stderr for the moment to strike, its
   * state for a runner stopped by IFMESH_CANARY_PAUSE_AT), tracked by pid.
   */
  function start(args: string[], extraEnv: Record<string, string> = {}) {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...testTmp(), ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackPid(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.on('exit', (code) => resolve({ code, stdout, stderr })),
    );
    const stopped = (what: string) =>
      waitFor(() => isStopped(child.pid!), what, { timeoutMs: 90_000, intervalMs: 20 });
    return { child, done, stderr: () => stderr, stopped };
  }

  /** A state directory of the test's, stopped after it. */
  function newState(name: string): string {
    const state = path.join(dir, name);
    states.push(state);
    return state;
  }

  /** A fleet deployed into a state of its own; exit 0 required. */
  async function deploy(
    name: string,
    instances = 1,
    o: { env?: Record<string, string>; more?: string[] } = {},
  ) {
    const state = newState(name);
    const r = await spawnCli([...(await deployArgs(state, instances, 'v1')), ...(o.more ?? [])], {
      cwd: dir,
      env: { ...env, ...o.env },
      timeoutMs: 90_000,
    });
    expect(r.code, r.stderr).toBe(0);
    return state;
  }

  return {
    dir,
    env,
    witness,
    turnPort: () => turnPort,
    cli,
    raw,
    start,
    deploy,
    deployArgs,
    newState,
  };
}

export interface SpooledEvent {
  producer: string;
  event: string;
  idempotency_key: string;
}

/**
 * Every event waiting in `state`'s spools (from each spool's acknowledged offset on): what its
 * producers logged and the witness has not acknowledged yet.
 */
export function spooled(state: string): SpooledEvent[] {
  const dir = openStateDir(state).spool;
  if (!existsSync(dir)) return [];
  const out: SpooledEvent[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ndjson'))) {
    const producer = f.slice(0, -'.ndjson'.length);
    const offsetFile = path.join(dir, `${producer}.offset`);
    const offset = existsSync(offsetFile)
      ? Number(JSON.parse(readFileSync(offsetFile, 'utf8')).offset) || 0
      : 0;
    const text = readFileSync(path.join(dir, f)).subarray(offset).toString('utf8');
    for (const line of text.split('\n').filter(Boolean)) {
      try {
        const e = JSON.parse(line) as { event: string; idempotency_key: string };
        out.push({ producer, event: e.event, idempotency_key: e.idempotency_key });
      } catch {
        // a torn last line (a crash mid-append): never counted as logged
      }
    }
  }
  return out;
}

/** The idempotency keys the witness database holds (read directly, read-only). */
export function storedKeys(db: string): Set<string> {
  const h = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const rows = h.prepare('SELECT idem_key FROM events WHERE idem_key IS NOT NULL').all() as {
      idem_key: string;
    }[];
    return new Set(rows.map((r) => r.idem_key));
  } finally {
    h.close();
  }
}

/** Events of the witness database, by a JSON field of their body (the trace of one procedure run). */
export function storedBy(
  db: string,
  field: string,
  value: string,
): { event: string; idem_key: string; metadata: Record<string, unknown> }[] {
  const h = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return (
      h
        .prepare(`SELECT body, idem_key FROM events WHERE json_extract(body, ?) = ? ORDER BY id`)
        .all(`$.${field}`, value) as { body: string; idem_key: string }[]
    ).map((r) => {
      const e = JSON.parse(r.body) as { event: string; metadata?: Record<string, unknown> };
      return { event: e.event, idem_key: r.idem_key, metadata: e.metadata ?? {} };
    });
  } finally {
    h.close();
  }
}

/**
 * Once the witness is back: replays what no live process holds (`witness spool --flush`, as the
 * runbook's alert says), waits for the live producers to drain their own, and counts how many of
 * `waiting` (the events spooled while it was away) the witness does not hold: the events lost.
 */
export async function lostAfterDrain(
  fleet: ReturnType<typeof faultFleet>,
  state: string,
  waiting: SpooledEvent[],
): Promise<{ lost: SpooledEvent[]; drainMs: number }> {
  const t0 = Date.now();
  const flush = await fleet.cli(['witness', 'spool', '--flush', '--json'], state, { timeoutMs: 60_000 });
  expect([0, 3], flush.stderr).toContain(flush.code);
  await waitFor(() => spooled(state).length === 0, 'every spool of the state drained', {
    timeoutMs: 60_000,
    intervalMs: 200,
  });
  const drainMs = Date.now() - t0;
  const stored = storedKeys(fleet.witness.db);
  return { lost: waiting.filter((e) => !stored.has(e.idempotency_key)), drainMs };
}

/** Seconds with one decimal, for a figure. */
export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
