// A plain http:// URL pointed at a TLS port (a fleet deployed with certificates) is not reported as a
// dead service: the error says the port speaks TLS and names the https:// URL. The servers are real
// (node:https with an openssl certificate, and a closed port) on loopback.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../../src/clients/http.js';
import { tempDir } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';
import { makeCert } from '../helpers/tls.js';

const dir = tempDir();
let server: ReturnType<typeof createServer>;
let port = 0;

beforeAll(async () => {
  const c = makeCert(dir.dir, 'server', 30, 'IP:127.0.0.1');
  server = createServer({ cert: readFileSync(c.cert), key: readFileSync(c.key) }, (_req, res) => {
    res.end('{"status":"healthy"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  dir.cleanup();
});

describe('httpRequest to the wrong scheme', () => {
  it('http:// to a TLS port: says it speaks TLS and names the https:// URL (exit 3 like any unreachable)', async () => {
    const err = await httpRequest(`http://127.0.0.1:${port}/health`, { timeoutMs: 3_000 }).catch((e) => e);
    expect(err.message).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port} speaks TLS, not plain HTTP`));
    expect(err.hint).toBe(`use https://127.0.0.1:${port} (and wss:// for agents)`);
    expect(err.exitCode).toBe(3);
  });

  it("an incident's assessment does not call it a total outage: its level is a floor until it is read", async () => {
    const { assessImpact, classify } = await import('../../src/ops/incident/classify.js');
    const { impact } = await assessImpact({
      signaling: [`http://127.0.0.1:${port}`],
      witness: null,
      now: Date.now,
      dispatcher: new Agent(),
    });
    expect(impact.instances).toEqual([{ url: `http://127.0.0.1:${port}`, up: false, answered: true }]);
    expect(classify(impact).description).not.toMatch(/Total service down/);
  });

  it('a closed port stays "unreachable"', async () => {
    const closed = await freePort();
    const err = await httpRequest(`http://127.0.0.1:${closed}/health`, { timeoutMs: 3_000 }).catch((e) => e);
    expect(err.message).toBe(`http://127.0.0.1:${closed} is unreachable: ECONNREFUSED`);
  });
});
