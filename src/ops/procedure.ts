// What a procedure that changes the fleet leaves behind if it is killed: a journal. Each run of
// deploy, rollback, failover, certs rotate, rotate-keys and maintenance daily writes
// <state>/procedures/<name>.json whole when it starts and at every step boundary, and marks it
// finished when it ends, however it ends short of being killed. A journal still `running` whose
// process is gone is an interrupted run: `ifmesh status` names it with the step it reached and the
// command that converges (running the procedure again), and the procedure's next run reads it
// (rollback continues to the same target, an emergency rotation keeps the incident it declared).
//
// The step boundaries are exported constants, and each is also a crash drill: with
// IFMESH_PAUSE_AT=<procedure>:<step> the run stops itself (SIGSTOP) right after its journal records
// that step, for a test (or an operator rehearsing) to `kill -9` it exactly there, or SIGCONT it.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { isAlive, startTicks } from '../exec/pid.js';
import { readStateJson, writeStateJson } from '../state/json-file.js';
import { checkProcessRecords } from '../state/processes.js';
import type { StateDir } from '../state/state-dir.js';
import type { Clock } from '../util/clock.js';
import { checkIncidentRecords } from './incident/store.js';

/** A certificate rotation's boundaries (certs rotate, failover cert, maintenance daily --renew). */
export const CERT_ROTATION_STEPS = [
  // the old pair copied aside
  'backed_up',
  // the new pair written beside the old one (<file>.rotating), fsynced
  'staged',
  // the new key in place, the certificate not yet: the pair on disk does not match until the next step
  'key_installed',
  'installed',
  // the first instance restarted on the new pair, the others not yet
  'instance_restarted',
] as const;

/** A key rotation's boundaries (rotate-keys, failover keys). */
export const KEY_ROTATION_STEPS = [
  // --emergency without --incident-id: the SEC- incident declared, no rotation asked yet
  'incident_declared',
  // every instance asked to rotate; agents answering
  'rotation_started',
  'agents_rotated',
  // failed connections counted after the settle time; the rotation record not yet written
  'settled',
] as const;

/** Every procedure's step boundaries, in the order a run reaches them. */
export const PROCEDURE_STEPS = {
  deploy: [
    'locked',
    'redis_ready',
    'instances_started',
    'nginx_applied',
    'agents_started',
    'agents_registered',
    // the release recorded and current; the supervisor not yet ensured
    'release_recorded',
  ],
  rollback: ['locked', 'signaling_rolled', 'agents_moved', 'current_set'],
  'failover-turn': ['locked', 'probed', 'persisted', 'pushed', 'reconnected'],
  'failover-signaling': ['locked', 'restarted'],
  'failover-promote-backup': ['locked', 'promoted'],
  'failover-partition': ['locked', 'pairs_found', 'reconnect_asked'],
  'failover-cert': ['locked', ...CERT_ROTATION_STEPS],
  'failover-keys': ['locked', ...KEY_ROTATION_STEPS.filter((s) => s !== 'incident_declared')],
  'certs-rotate': CERT_ROTATION_STEPS,
  'rotate-keys': KEY_ROTATION_STEPS,
  'maintenance-daily': ['locked', 'certificate', 'logs_rotated', 'witness_cleaned', 'report_written'],
  // The canary keeps its own state machine (src/ops/rollout/canary-run.ts); these are its boundaries.
  canary: ['phase_started', 'agents_moved', 'measured', 'promoting'],
} as const;

export type ProcedureName = keyof typeof PROCEDURE_STEPS;
export type StepOf<P extends ProcedureName> = (typeof PROCEDURE_STEPS)[P][number];
export type CertRotationStep = (typeof CERT_ROTATION_STEPS)[number];
export type KeyRotationStep = (typeof KEY_ROTATION_STEPS)[number];

/** Where an op shared by several procedures marks its boundaries: whichever journal runs it. */
export interface StepMarks<S extends string> {
  step(step: S, data?: Record<string, unknown>): void;
}

/** The crash drill's variable: IFMESH_PAUSE_AT=<procedure>:<step>. */
export const PAUSE_ENV = 'IFMESH_PAUSE_AT';

/**
 * Stops this process (SIGSTOP) when IFMESH_PAUSE_AT names this procedure's step: called right after
 * the step is persisted, so a `kill -9` then leaves exactly what a crash at that boundary would.
 */
export function pausePoint(env: Record<string, string | undefined>, procedure: string, step: string): void {
  if (env[PAUSE_ENV] === `${procedure}:${step}`) process.kill(process.pid, 'SIGSTOP');
}

export interface ProcedureRecord {
  procedure: ProcedureName;
  run_id: string;
  pid: number;
  /** The process's start time (/proc), so a later process given the same pid is not taken for it. */
  pid_start: string | null;
  /** What this run does, in an operator's words: "deploy deploy-1700-ab12 (v2)". */
  summary: string;
  /** The command that converges after this run was interrupted. */
  rerun: string;
  /** What the command alone does not say ("with the configuration it was given"). */
  rerun_note?: string;
  started_at: string;
  updated_at: string;
  /** The last boundary reached (null: started, none yet). */
  step: string | null;
  steps: { step: string; at: string }[];
  status: 'running' | 'completed' | 'failed';
  finished_at: string | null;
  error: string | null;
  /** What a next run needs to continue this one (a rollback's target, a declared incident). */
  data: Record<string, unknown>;
  /** The interrupted run this one followed, if any. */
  after_interrupted: { run_id: string; step: string | null; pid: number } | null;
}

/** An interrupted run, as `status` shows it. */
export interface InterruptedRun {
  procedure: string;
  summary: string;
  step: string | null;
  pid: number;
  started_at: string;
  updated_at: string;
  /** What to run. */
  hint: string;
}

const isRecord = (v: unknown) => {
  const r = v as Partial<ProcedureRecord> | null;
  return typeof r?.procedure === 'string' && typeof r.run_id === 'string' && Number.isInteger(r.pid);
};

export function readProcedure(state: StateDir, name: ProcedureName): ProcedureRecord | undefined {
  return readStateJson<ProcedureRecord>(
    state.procedureFile(name),
    isRecord,
    'delete it: it only records the last run (check `ifmesh status` for what runs)',
  );
}

/** Whether the process a record names is the one that wrote it and still runs. */
function runs(r: Pick<ProcedureRecord, 'pid' | 'pid_start'>): boolean {
  if (!isAlive(r.pid)) return false;
  return r.pid_start === null || startTicks(r.pid) === r.pid_start;
}

const interrupted = (r: ProcedureRecord | undefined): r is ProcedureRecord =>
  r !== undefined && r.status === 'running' && !runs(r);

/** The last run of `name` when it was interrupted (its process gone before it finished). */
export function interruptedRun(state: StateDir, name: ProcedureName): ProcedureRecord | undefined {
  const r = readProcedure(state, name);
  return interrupted(r) ? r : undefined;
}

const describe = (r: ProcedureRecord): InterruptedRun => ({
  procedure: r.procedure,
  summary: r.summary,
  step: r.step,
  pid: r.pid,
  started_at: r.started_at,
  updated_at: r.updated_at,
  hint: `${r.summary} was interrupted ${r.step ? `after step ${r.step}` : 'before its first step'} (pid ${r.pid} is gone): run \`${r.rerun}\` again${r.rerun_note ? `, ${r.rerun_note}` : ''}`,
});

/** Every procedure of `state` whose last run was interrupted; a journal that does not parse throws. */
export function interruptedRuns(state: StateDir): InterruptedRun[] {
  let files: string[];
  try {
    files = readdirSync(state.procedures).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files
    .sort()
    .map((f) => readProcedure(state, path.basename(f, '.json') as ProcedureName))
    .filter(interrupted)
    .map(describe);
}

/** What a journal reads: the clock it stamps steps with, and the environment the crash drill is in. */
export interface JournalCtx {
  clock: Clock;
  /** Absent (an op called from a test without one): no crash drill. */
  env?: Record<string, string | undefined> | undefined;
}

/** What a run says of itself when it starts. */
export type JournalStart = Pick<ProcedureRecord, 'summary' | 'rerun' | 'rerun_note'> & {
  data?: Record<string, unknown>;
};

/** One run's journal: written at its start, at each boundary, and when it ends. */
export class ProcedureJournal<P extends ProcedureName> {
  private constructor(
    private readonly state: StateDir,
    private readonly rec: ProcedureRecord,
    private readonly ctx: JournalCtx,
    /** The interrupted run this one follows. */
    readonly previous: ProcedureRecord | undefined,
  ) {}

  /**
   * Starts a run's journal. Call it once the run holds its lock (when it takes one): another live
   * run's journal is never overwritten by a run that is about to be refused.
   */
  static begin<P extends ProcedureName>(
    state: StateDir,
    procedure: P,
    o: JournalStart,
    ctx: JournalCtx,
  ): ProcedureJournal<P> {
    const previous = interruptedRun(state, procedure);
    const now = new Date(ctx.clock.now()).toISOString();
    const rec: ProcedureRecord = {
      procedure,
      run_id: randomBytes(6).toString('hex'),
      pid: process.pid,
      pid_start: startTicks(process.pid),
      summary: o.summary,
      rerun: o.rerun,
      ...(o.rerun_note ? { rerun_note: o.rerun_note } : {}),
      started_at: now,
      updated_at: now,
      step: null,
      steps: [],
      status: 'running',
      finished_at: null,
      error: null,
      data: o.data ?? {},
      after_interrupted: previous
        ? { run_id: previous.run_id, step: previous.step, pid: previous.pid }
        : null,
    };
    const j = new ProcedureJournal<P>(state, rec, ctx, previous);
    j.write();
    return j;
  }

  get record(): Readonly<ProcedureRecord> {
    return this.rec;
  }

  /** Records that the run reached `step` (with what a next run needs), then the crash drill's pause. */
  step(step: StepOf<P>, data: Record<string, unknown> = {}): void {
    const at = new Date(this.ctx.clock.now()).toISOString();
    this.rec.step = step;
    this.rec.steps.push({ step, at });
    Object.assign(this.rec.data, data);
    this.rec.updated_at = at;
    this.write();
    pausePoint(this.ctx.env ?? {}, this.rec.procedure, step);
  }

  /** The run ended (not killed): completed, or failed with its error. */
  finish(error?: unknown): void {
    // Another run of the same procedure may have started since (procedures without a lock): its
    // journal is the one to keep.
    if (readProcedureSafe(this.state, this.rec.procedure)?.run_id !== this.rec.run_id) return;
    const at = new Date(this.ctx.clock.now()).toISOString();
    Object.assign(this.rec, {
      status: error === undefined ? 'completed' : 'failed',
      finished_at: at,
      updated_at: at,
      error: error === undefined ? null : error instanceof Error ? error.message : String(error),
    });
    this.write();
  }

  private write(): void {
    writeStateJson(this.state.procedureFile(this.rec.procedure), this.rec);
  }
}

function readProcedureSafe(state: StateDir, name: ProcedureName): ProcedureRecord | undefined {
  try {
    return readProcedure(state, name);
  } catch {
    return undefined;
  }
}

/**
 * Another command finished what an interrupted run of `name` left (maintenance daily --renew
 * installing a staged certificate and restarting the instances a killed `certs rotate` left on the
 * old one): its journal is closed as completed by `by`, so `status` no longer calls it interrupted.
 */
export function settleInterrupted(state: StateDir, name: ProcedureName, by: string, clock: Clock): boolean {
  const r = interruptedRun(state, name);
  if (!r) return false;
  const at = new Date(clock.now()).toISOString();
  writeStateJson(state.procedureFile(name), {
    ...r,
    status: 'completed',
    finished_at: at,
    updated_at: at,
    completed_by: by,
  });
  return true;
}

/** Runs `fn` as one journaled run of `procedure`: finished as completed or failed however `fn` ends. */
export async function withProcedure<P extends ProcedureName, T>(
  state: StateDir,
  procedure: P,
  o: JournalStart,
  ctx: JournalCtx,
  fn: (journal: ProcedureJournal<P>) => Promise<T>,
): Promise<T> {
  const journal = ProcedureJournal.begin(state, procedure, o, ctx);
  try {
    const out = await fn(journal);
    journal.finish();
    return out;
  } catch (err) {
    journal.finish(err);
    throw err;
  }
}

/**
 * Before a procedure stops, moves or replaces anything (deploy, canary, rollback): every incident
 * record and process record must read, else the error names the file and its fix. A torn incident
 * may hold the deploy lock; a torn process record's process could not be stopped or moved, and a
 * canary that found one halfway had already left an agent down.
 */
export function checkStateRecords(state: StateDir): void {
  checkIncidentRecords(state);
  checkProcessRecords(state);
}
