// Incidents outlive the command that declared them: each is a record in <state>/incidents/<id>.json
// (written whole: tmp + rename), and an open one holds the deploy lock persistently until
// `incident resolve` releases it by its token. The record also carries its escalation schedule (who
// was paged, who acknowledged, who is paged next and when), so any later command can carry it on.
import { existsSync } from 'node:fs';
import type { OncallLevel } from '../../config/oncall.js';
import { CheckFailedError, StateCorruptError, UsageError } from '../../errors.js';
import {
  allRecords,
  readStateJson,
  scanStateFiles,
  type UnreadableFile,
  writeStateJson,
} from '../../state/json-file.js';
import { acquireLock } from '../../state/lock.js';
import type { StateDir } from '../../state/state-dir.js';
import type { Clock } from '../../util/clock.js';
import type { NotificationResult, Severity } from './notify/types.js';

export type IncidentKind = 'p1' | 'p2' | 'security' | 'cert-expiry' | 'turn-failure';
export const INCIDENT_KINDS: IncidentKind[] = ['p1', 'p2', 'security', 'cert-expiry', 'turn-failure'];

export interface Impact {
  /**
   * `answered`: not up to this command, but it answered (a certificate the command cannot verify, TLS
   * on an http:// URL): it runs, so it is not counted as a service down.
   */
  instances: { url: string; up: boolean; answered?: true }[];
  agents_connected: number;
  connections: number;
  /** Failed connection_state_changed events in the last 5 minutes (null: the witness did not answer). */
  failed_connections_5m: number | null;
  /** Agents named by those failures or by a failed connection now. */
  agents_affected: number;
}

export interface Classification {
  level: Severity;
  description: string;
  response_time: string;
  response_minutes: number;
  escalation: string;
}

export interface ActionTaken {
  at: string;
  action: string;
  ok: boolean;
  detail: string;
}

/** A walked decision tree, shaped like src/ops/troubleshoot/trees.ts's TreeWalk. */
export interface TreeWalkRecord {
  tree: string;
  path: { question: string; evidence: Record<string, unknown>; answer: string }[];
  root_cause: { id: string; title: string } | null;
  actions: string[];
}

/** One roster level in one incident. */
export interface LevelState {
  level: number;
  /** "L2 Engineering Lead (Dana)". */
  name: string;
  /** `waiting`: not paged yet; `failed`: every channel of its last page failed (not reached). */
  status: 'waiting' | 'paged' | 'failed' | 'acknowledged';
  /** Channels as configured: ["pagerduty"], ["slack @webrtc-oncall"]. */
  via: string[];
  paged_at: string | null;
  /** When a paged level that has not acknowledged counts as unavailable. */
  ack_due_at: string | null;
  acked_at: string | null;
  failed_at: string | null;
  error: string | null;
  /** Pages sent to it (each may be several channels, each retried). */
  pages: number;
}

export interface NextPage {
  level: number;
  name: string;
  via: string[];
  due_at: string;
  reason: string;
}

export interface EscalationState {
  /** The roster as configured when the incident was declared. */
  roster: OncallLevel[];
  levels: LevelState[];
  /** Who is paged next, when and why; null when nobody is (see `stopped`). */
  next: NextPage | null;
  /** Why nothing is scheduled: paging off, service restored, every level reached, resolved. */
  stopped: string | null;
}

export interface IncidentRecord {
  id: string;
  kind: IncidentKind;
  title: string;
  severity: Severity;
  classification: Classification | null;
  status: 'open' | 'resolved';
  started_at: string;
  resolved_at?: string;
  trace_id: string;
  /** The deploy lock's token while the incident is open. */
  lock_token: string | null;
  /** Paging is on: at declaration and on schedule (default for P1/P2 with a channel configured; --no-notify). */
  notify: boolean;
  /** The highest roster level reached (its page delivered); 0: nobody. */
  escalation_level: number;
  /** Absent on records written before the roster. */
  escalation?: EscalationState;
  /** p1: whether restarting dead instances restored the service (the runbook's exit 0). */
  auto_recovery?: { restored: boolean; at: string; detail: string };
  witness_url: string | null;
  impact: Impact | null;
  tree: TreeWalkRecord | null;
  actions: ActionTaken[];
  notifications: NotificationResult[];
  /** Commands a person should run next, exactly as typed. */
  next_steps: string[];
  findings: Record<string, unknown>;
}

const ID_RE = /^(INC|SEC)-\d{8}-\d{6}(-\d+)?$/;

export function incidentIdFor(kind: IncidentKind, now: number, state: StateDir): string {
  const d = new Date(now).toISOString();
  const base = `${kind === 'security' ? 'SEC' : 'INC'}-${d.slice(0, 10).replace(/-/g, '')}-${d.slice(11, 19).replace(/:/g, '')}`;
  let id = base;
  for (let n = 2; existsSync(state.incidentFile(id)); n++) id = `${base}-${n}`;
  return id;
}

export function writeIncident(state: StateDir, rec: IncidentRecord): void {
  writeStateJson(state.incidentFile(rec.id), rec);
}

const isIncident = (v: unknown) => {
  const r = v as Partial<IncidentRecord> | null;
  return typeof r?.id === 'string' && typeof r.status === 'string' && typeof r.kind === 'string';
};

/**
 * A record that no longer parses is an error naming it, never "no incident": an open one may still
 * hold the deploy lock, so the fix says how to release that by hand too.
 */
function readIncidentFile(state: StateDir, file: string): IncidentRecord | undefined {
  return readStateJson<IncidentRecord>(
    file,
    isIncident,
    `restore it from a backup; if that incident is over, remove it with \`rm ${file}\` and, if \`ifmesh status\` says an incident still holds deploys, \`rm ${state.lock('deploy')}\``,
  );
}

export function readIncident(state: StateDir, id: string): IncidentRecord {
  if (!ID_RE.test(id))
    throw new UsageError(
      `${id} is not an incident id`,
      'ids look like INC-20261130-193000; see `ifmesh incident list`',
    );
  const rec = readIncidentFile(state, state.incidentFile(id));
  if (!rec) throw new UsageError(`no incident ${id} in ${state.root}`, 'see `ifmesh incident list`');
  return rec;
}

/** An incident record that no longer parses: named by the views and the escalation run. */
export type UnreadableIncident = UnreadableFile;

/**
 * Every incident record that reads, and every one that does not: one torn record must not stop the
 * pages of every other open incident (`incident due` from cron). What changes the deploy lock or an
 * incident's state uses `listIncidents`, which refuses instead.
 */
export function scanIncidents(state: StateDir): {
  records: IncidentRecord[];
  unreadable: UnreadableIncident[];
} {
  return scanStateFiles(state.incidents, (_name, file) => readIncidentFile(state, file));
}

export function listIncidents(state: StateDir): IncidentRecord[] {
  return allRecords(scanIncidents(state));
}

/**
 * Fails with the corrupt record's file and fix, if any: called before taking the deploy lock, which
 * an open incident holds, so a refused deploy names the real problem instead of pointing at an
 * `incident resolve` that could not read the record either.
 */
export function checkIncidentRecords(state: StateDir): void {
  listIncidents(state);
}

const INCIDENTS_LOCK = 'incidents';
const LOCK_WAIT_MS = 60_000;

/**
 * Runs `fn` holding the incidents lock, so a cron's due escalations, an operator's `ack` and another
 * declaration never read-modify-write the same record at once. Waits for a holder (a page may take
 * seconds of retries) rather than failing.
 */
export async function withIncidentLock<T>(
  state: StateDir,
  purpose: string,
  clock: Clock,
  fn: () => Promise<T>,
): Promise<T> {
  const deadline = clock.now() + LOCK_WAIT_MS;
  for (;;) {
    let lock: Awaited<ReturnType<typeof acquireLock>>;
    try {
      lock = await acquireLock(state, INCIDENTS_LOCK, purpose, clock);
    } catch (err) {
      if (!(err instanceof CheckFailedError && err.code === 'locked') || clock.now() > deadline) throw err;
      await clock.sleep(100);
      continue;
    }
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }
}

/** The record's next steps still to do: once it is resolved, its own ack and resolve are done. */
export function nextSteps(r: Pick<IncidentRecord, 'status' | 'next_steps'>): string[] {
  return r.status === 'resolved'
    ? r.next_steps.filter((s) => !/^ifmesh incident (ack|resolve) /.test(s))
    : r.next_steps;
}
