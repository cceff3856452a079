// The inputs the fuzzer (test/faults/fuzz-servers.test.ts) found that ended a server or got a 500,
// each kept here as a fixed regression: a request path starting with `//` (a protocol-relative URL to
// `new URL`, which threw outside every handler), the same path on a WebSocket upgrade, a malformed
// percent-encoding in /peers/:id, and a frame whose `type` is an object that cannot be printed.
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { type RunningWitness, startWitness } from '../helpers/witness.js';

let sig: RunningSignaling;
let witness: RunningWitness;
beforeAll(async () => {
  sig = await startSignaling();
  witness = await startWitness();
});
afterAll(async () => {
  await sig?.stop();
  await witness?.stop();
});

/** A raw GET with the path exactly as given (fetch would normalise it). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET', timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to GET ${path} within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

describe('request targets and frames that used to end a server', () => {
  it.each(['//', '//agents', '//x/../..'])(
    'GET %s: a JSON 404 (a path, not a URL) from signaling and the witness, and both stay up',
    async (path) => {
      for (const base of [sig.http, witness.url]) {
        const r = await rawGet(base, path);
        expect(r.status, `${base}${path}`).toBe(404);
        expect(JSON.parse(r.body).error.code).toBe('not_found');
        expect((await rawGet(base, '/health')).status).toBe(200);
      }
    },
  );

  it('a WebSocket upgrade to // is refused with 404, and signaling stays up', async () => {
    const port = (sig.server.http.address() as AddressInfo).port;
    const ws = new WebSocket(`ws://127.0.0.1:${port}//`);
    const status = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect(status).toBe(404);
    expect((await rawGet(sig.http, '/health')).status).toBe(200);
  });

  it.each(['%E0%A4%A', '%', '%FF', '%ED%A0%80'])('GET /peers/%s: 400 bad_request, not 500', async (id) => {
    const r = await rawGet(sig.http, `/peers/${id}`);
    expect(r.status).toBe(400);
    expect(r.body).toContain('percent-encoding');
  });

  it('a frame whose type is an object with its own toString gets an error frame, not silence', async () => {
    const c = await connect(sig.url);
    c.ws.send(JSON.stringify({ type: { toString: 1 } }));
    const closed = await Promise.race([
      c.next('error', 3_000).then((f) => ({ frame: f })),
      c.closed.then((x) => ({ close: x.code })),
    ]);
    expect(JSON.stringify(closed)).toMatch(/unknown_type|4400/);
    c.ws.close();
  });
});
