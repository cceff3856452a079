// Local receivers standing for the remote notification services (PagerDuty's Events API v2, a Slack
// incoming webhook, a mail relay): they record what arrives so tests check every payload. Each is
// closed when the test ends.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { onTestFinished } from 'vitest';

/** Stands for PagerDuty and Slack: records every POST, answers with `status(n)` for the n-th. */
export async function receiver(
  status: (n: number, path: string) => number = (_n, p) => (p === '/slack' ? 200 : 202),
) {
  const got: { path: string; body: any }[] = [];
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    got.push({ path: req.url ?? '', body: JSON.parse(text) });
    const code = status(got.length, req.url ?? '');
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(
      req.url === '/slack' && code === 200
        ? 'ok'
        : JSON.stringify({ status: code === 202 ? 'success' : 'invalid event', message: 'x' }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { got, base };
}

/** Stands for the mail relay: a real SMTP server on loopback (smtp-server) keeping every message. */
export async function smtp() {
  const mails: { to: string[]; data: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      let data = '';
      stream.on('data', (d: Buffer) => {
        data += d.toString();
      });
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  return { mails, url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}` };
}
