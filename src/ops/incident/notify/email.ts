// E-mail over SMTP with nodemailer: to the roster level's address (`via=email:ADDRESS`), else to
// ALERT_EMAIL; the runbook's level 3 mails the VP when a P1 stays open over an hour. SMTP_URL is
// smtp://[user:pass@]host:port (or smtps://); it may carry a password, so errors name the host only.
import os from 'node:os';
import nodemailer from 'nodemailer';
import { type IncidentNotice, NOTIFY_TIMEOUT_MS, type Notifier } from './types.js';

export function emailMessage(n: IncidentNotice, to: string, from: string) {
  const lines = [
    `Incident ${n.incident_id} (${n.kind}), severity ${n.severity}, escalation level ${n.level}.`,
    ...(n.for ? [`Paging ${n.for}.`] : []),
    `Started at ${n.started_at}.`,
    '',
    n.summary,
    '',
    ...Object.entries(n.details).map(([k, v]) => `${k}: ${v}`),
    '',
    `ifmesh incident show ${n.incident_id}`,
  ];
  return {
    from,
    to,
    subject: `[${n.severity}] ${n.action === 'resolve' ? 'RESOLVED ' : n.action === 'acknowledge' ? 'ACKNOWLEDGED ' : ''}${n.title} (${n.incident_id})`,
    text: `${lines.join('\n')}\n`,
  };
}

export function emailNotifier(o: { smtpUrl: string; to: string; from?: string }): Notifier {
  const host = (() => {
    try {
      return new URL(o.smtpUrl).host;
    } catch {
      return 'the SMTP server';
    }
  })();
  return {
    channel: 'email',
    async send(n) {
      const to = n.recipient ?? o.to;
      if (!to) throw new Error('no address to mail: set ALERT_EMAIL, or give the level via=email:ADDRESS');
      const transport = nodemailer.createTransport({
        url: o.smtpUrl,
        connectionTimeout: NOTIFY_TIMEOUT_MS,
        greetingTimeout: NOTIFY_TIMEOUT_MS,
        socketTimeout: NOTIFY_TIMEOUT_MS,
      });
      try {
        await transport.sendMail(emailMessage(n, to, o.from ?? `ifmesh <ifmesh@${os.hostname()}>`));
      } catch (err) {
        const code =
          (err as { code?: string; responseCode?: number }).responseCode ?? (err as { code?: string }).code;
        throw new Error(`mail to ${to} through ${host} failed${code ? ` (${code})` : ''}`);
      } finally {
        transport.close();
      }
    },
  };
}
