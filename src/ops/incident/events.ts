// The incident's voice: witness events that all carry its incident_id and trace id, and notices
// sent through the configured notifiers with retries (never throwing).
import path from 'node:path';
import { WitnessClient } from '../../clients/witness.js';
import type { OpContext } from '../shared.js';
import { CLASSIFICATION } from './classify.js';
import { CHANNEL_KEYS, LEVEL_CHANNEL, type Notifiers, sendNotice } from './notify/send.js';
import type { IncidentNotice, NoticeAction, NotificationResult } from './notify/types.js';
import type { IncidentRecord } from './store.js';

export interface IncidentIo {
  stateDir: string;
  witness: { url: string; apiKey: string } | null;
  notifiers: Notifiers;
}

export class IncidentLog {
  private client: WitnessClient | undefined;
  constructor(
    private readonly rec: Pick<IncidentRecord, 'id' | 'trace_id' | 'severity'>,
    io: IncidentIo,
    ctx: Pick<OpContext, 'clock' | 'dispatcher'>,
  ) {
    if (io.witness?.apiKey)
      this.client = new WitnessClient({
        url: io.witness.url,
        apiKey: io.witness.apiKey,
        producer: `incident-${rec.id}-${process.pid}`,
        spoolDir: path.join(io.stateDir, 'witness-spool'),
        stateDir: io.stateDir,
        dispatcher: ctx.dispatcher,
        clock: ctx.clock,
      });
  }

  log(event: string, fields: Record<string, unknown> = {}): void {
    this.client?.log({
      event,
      incident_id: this.rec.id,
      trace_id: this.rec.trace_id,
      severity: this.rec.severity.toLowerCase(),
      ...fields,
    });
  }

  /** Whether every event reached the witness (false: they wait in the spool). */
  async close(): Promise<boolean> {
    if (!this.client) return false;
    const ok = await this.client.flush(5_000);
    await this.client.close();
    return ok;
  }
}

export function noticeOf(rec: IncidentRecord, action: NoticeAction, level: number): IncidentNotice {
  const cls = CLASSIFICATION[rec.severity];
  return {
    incident_id: rec.id,
    kind: rec.kind,
    severity: rec.severity,
    action,
    level,
    title: rec.title,
    summary: rec.actions.at(-1)?.detail ?? rec.title,
    started_at: rec.started_at,
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

/** Sends the notice of escalation `level` (its one channel); reports a channel that is not configured. */
export async function notifyLevel(
  rec: IncidentRecord,
  action: NoticeAction,
  level: number,
  io: IncidentIo,
  ctx: Pick<OpContext, 'clock' | 'dispatcher' | 'signal'>,
): Promise<NotificationResult> {
  const channel = LEVEL_CHANNEL[level] ?? 'email';
  const notifier = io.notifiers[channel];
  if (!notifier)
    return {
      channel,
      action,
      level,
      ok: false,
      attempts: 0,
      at: new Date(ctx.clock.now()).toISOString(),
      error: `not configured: set ${CHANNEL_KEYS[channel]}`,
    };
  return sendNotice(notifier, noticeOf(rec, action, level), ctx);
}
