// The registration check of a failover's validation reads the instances' /agents again for a while
// when it finds none: right after a failover the agents are still reconnecting, and a loaded host
// answers late. A local node:http server plays one signaling instance (and the witness, answering
// no events); time is a fake clock, so the 10 s settle window takes no wall-clock time.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { getGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXCHANGE_THRESHOLDS } from '../../src/ops/agent/thresholds.js';
import { REPORT_SETTLE_MS, validateRecovery } from '../../src/ops/failover/validate.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { FakeClock } from '../helpers/clock.js';

let server: http.Server;
let base = '';
let dir = '';
// How many /agents reads answer an empty list before the agent shows up (Infinity: never).
let emptyReads = 0;
let agentReads = 0;
// How many witness queries answer 503 query_timeout (a loaded witness cutting a scan) before 200.
let busyQueries = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ifmesh-validate-'));
  server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/agents') {
      agentReads += 1;
      const agents = agentReads > emptyReads ? [{ agent_id: 'agent-1' }] : [];
      return res.end(JSON.stringify({ agents, total: agents.length }));
    }
    if (req.url === '/connections') return res.end(JSON.stringify({ connections: [] }));
    req.resume();
    req.on('end', () => {
      if (busyQueries > 0) {
        busyQueries -= 1;
        res.statusCode = 503;
        return res.end(JSON.stringify({ error: 'query_timeout', message: 'query exceeded its time budget' }));
      }
      res.end(JSON.stringify({ results: [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the validation, moving the fake clock a second at a time (bounded) until it is done. */
async function validate(clock: FakeClock, name = 'registration') {
  const run = validateRecovery(
    {
      failoverId: 'fo-reg',
      scenario: 'B',
      signalingHttp: [base],
      witness: { url: base, apiKey: 'k', state: openStateDir(dir) },
      recovery: { recovery_ms: 100 },
      exchange: async () => ({
        ok: true,
        agents: 2,
        pairs: 1,
        pings_sent: 2,
        pongs_received: 2,
        delivery_ratio: 1,
        rtt_ms: { p50: 1, p95: 1, max: 1 },
        signature_failures: 0,
        messages_per_second: 10,
        mesh_formed_ms: 100,
        thresholds: EXCHANGE_THRESHOLDS,
        failures: [],
      }),
    },
    { signal: new AbortController().signal, clock, dispatcher: getGlobalDispatcher() },
  );
  let done = false;
  void run.finally(() => {
    done = true;
  });
  for (let i = 0; i < 200 && !done; i++) {
    await new Promise((r) => setTimeout(r, 10));
    await clock.advance(500);
  }
  return (await run).checks.find((c) => c.name === name)!;
}

describe('failover validation: registration', () => {
  it('passes once the agents are back within the settle window, reading /agents again', async () => {
    emptyReads = 2;
    agentReads = 0;
    const check = await validate(new FakeClock());
    expect(check).toMatchObject({ passed: true, detail: '1 agents registered' });
    expect(agentReads).toBe(3);
  });

  it('fails as CRITICAL when no agent comes back within the window', async () => {
    emptyReads = Number.POSITIVE_INFINITY;
    agentReads = 0;
    const clock = new FakeClock();
    const t0 = clock.now();
    const check = await validate(clock);
    expect(check).toMatchObject({ passed: false, detail: 'CRITICAL: no agents registered' });
    expect(clock.now() - t0).toBeGreaterThanOrEqual(REPORT_SETTLE_MS);
  });
});

describe('failover validation: a witness too busy to answer a query at once', () => {
  it('reads again after a 503 query_timeout, and fails only when the witness keeps answering it', async () => {
    emptyReads = 0;
    busyQueries = 2;
    expect(await validate(new FakeClock(), 'error_rate_trend')).toMatchObject({ passed: true });
    expect(busyQueries).toBe(0);
    busyQueries = Number.POSITIVE_INFINITY;
    expect(await validate(new FakeClock(), 'error_rate_trend')).toMatchObject({
      passed: false,
      detail: 'witness /api/query answered 503',
    });
    busyQueries = 0;
  });
});
