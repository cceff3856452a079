import type { WitnessClient } from '../../clients/witness.js';
import { defaultRoster, type OncallLevel } from '../../config/oncall.js';
import { CONFIG_KEYS, type KeySpec } from '../../config/schema.js';
import type { StateDir } from '../../state/state-dir.js';
import { openWitness } from '../events.js';
import type { OpContext } from '../shared.js';
import { CLASSIFICATION } from './classify.js';
import type { Notifiers } from './notify/send.js';
import type { IncidentNotice, NoticeAction } from './notify/types.js';
import type { IncidentRecord } from './store.js';

export interface IncidentIo {
  state: StateDir;
  witness: { url: string; apiKey: string } | null;
  notifiers: Notifiers;
  /** The on-call roster of the configuration (ONCALL_LEVEL_N), snapshotted into each new incident; absent: the schema's defaults. */
  roster?: OncallLevel[];
  /** SLACK_INCIDENT_CHANNEL: where the runbook's step-5 post goes; absent: #incident-response. */
  teamChannel?: string;
}

/** The roster of `io`, or the runbook's (the schema's defaults). */
export const rosterOf = (io: Pick<IncidentIo, 'roster'>): OncallLevel[] =>
  io.roster ?? defaultRoster(CONFIG_KEYS as KeySpec[]);

/** What became of the events of one command: delivered, waiting in the spool, or never logged. */
export type WitnessOutcome = 'logged' | 'spooled' | 'not_logged';

export class IncidentLog {
  private client: WitnessClient | undefined;
  private count = 0;
  constructor(
    private readonly rec: Pick<IncidentRecord, 'id' | 'trace_id' | 'severity'>,
    io: Pick<IncidentIo, 'state' | 'witness'>,
    ctx: Pick<OpContext, 'clock' | 'dispatcher'>,
  ) {
    this.client = openWitness(
      io.witness ? { ...io.witness, state: io.state } : undefined,
      `incident-${rec.id}-${process.pid}`,
      ctx,
    );
  }

  log(event: string, fields: Record<string, unknown> = {}): void {
    if (!this.client) return;
    this.count++;
    this.client.log({
      event,
      incident_id: this.rec.id,
      trace_id: this.rec.trace_id,
      severity: this.rec.severity.toLowerCase(),
      ...fields,
    });
  }

  /** Flushes: `spooled` only when events were logged and some did not reach the witness yet. */
  async close(): Promise<WitnessOutcome> {
    if (!this.client) return 'not_logged';
    const ok = await this.client.flush(5_000);
    await this.client.close();
    if (this.count === 0) return 'not_logged';
    return ok ? 'logged' : 'spooled';
  }
}

/** The runbook's Impact field. */
export const impactText = (rec: IncidentRecord) =>
  rec.impact ? `Connected agents: ${rec.impact.agents_connected}` : 'not assessed yet';

export function noticeOf(
  rec: IncidentRecord,
  action: NoticeAction,
  o: { level: number; summary: string; for?: string; headline?: string },
): IncidentNotice {
  const cls = CLASSIFICATION[rec.severity];
  return {
    incident_id: rec.id,
    kind: rec.kind,
    severity: rec.severity,
    action,
    level: o.level,
    title: rec.title,
    summary: o.summary,
    started_at: rec.started_at,
    ...(o.for ? { for: o.for } : {}),
    ...(o.headline ? { headline: o.headline } : {}),
    impact: impactText(rec),
    details: {
      'Response time': cls.response_time,
      Escalation: cls.escalation,
      ...(rec.impact
        ? {
            'Connected agents': rec.impact.agents_connected,
            'Failed connections (5m)': rec.impact.failed_connections_5m ?? 'unknown',
          }
        : {}),
    },
  };
}
