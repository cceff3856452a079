// Incidents outlive the command that declared them: each is a record in <state>/incidents/<id>.json
// (written whole: tmp + rename), and an open one holds the deploy lock persistently until
// `incident resolve` releases it by its token.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { UsageError } from '../../errors.js';
import { statePaths } from '../../state/state-dir.js';
import type { NotificationResult, Severity } from './notify/types.js';

export type IncidentKind = 'p1' | 'p2' | 'security' | 'cert-expiry' | 'turn-failure';
export const INCIDENT_KINDS: IncidentKind[] = ['p1', 'p2', 'security', 'cert-expiry', 'turn-failure'];

export interface Impact {
  instances: { url: string; up: boolean }[];
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
  /** Notify on escalation and resolution (set by --notify). */
  notify: boolean;
  escalation_level: number;
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

export function incidentIdFor(kind: IncidentKind, now: number, stateDir: string): string {
  const d = new Date(now).toISOString();
  const base = `${kind === 'security' ? 'SEC' : 'INC'}-${d.slice(0, 10).replace(/-/g, '')}-${d.slice(11, 19).replace(/:/g, '')}`;
  let id = base;
  for (let n = 2; existsSync(statePaths(stateDir).incidentFile(id)); n++) id = `${base}-${n}`;
  return id;
}

export function writeIncident(stateDir: string, rec: IncidentRecord): void {
  const p = statePaths(stateDir);
  mkdirSync(p.incidents, { recursive: true });
  const file = p.incidentFile(rec.id);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(rec, null, 2)}\n`);
  renameSync(tmp, file);
}

export function readIncident(stateDir: string, id: string): IncidentRecord {
  if (!ID_RE.test(id))
    throw new UsageError(
      `${id} is not an incident id`,
      'ids look like INC-20261130-193000; see `ifmesh incident list`',
    );
  try {
    return JSON.parse(readFileSync(statePaths(stateDir).incidentFile(id), 'utf8')) as IncidentRecord;
  } catch {
    throw new UsageError(`no incident ${id} in ${stateDir}`, 'see `ifmesh incident list`');
  }
}

export function listIncidents(stateDir: string): IncidentRecord[] {
  const dir = statePaths(stateDir).incidents;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      try {
        return JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')) as IncidentRecord;
      } catch {
        return undefined;
      }
    })
    .filter((r): r is IncidentRecord => r !== undefined);
}
