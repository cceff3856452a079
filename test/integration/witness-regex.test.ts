import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { type Service, startWitnessProcess } from '../helpers/processes.js';
import { expectStormAnswered, logLongValues } from '../helpers/regex-storm.js';
import { post } from '../helpers/witness.js';

// The witness runs as its own process, as in production, so the test's own HTTP work does not
// share its event loop.
let w: Service;
let cleanup: () => void;
beforeAll(async () => {
  const t = tempDir();
  cleanup = t.cleanup;
  w = await startWitnessProcess(path.join(t.dir, 'witness.db'));
  await logLongValues(w.url);
});
afterAll(async () => {
  await w?.stop();
  cleanup?.();
});

describe('hostile regular expressions', () => {
  it('refuses a pattern over 256 characters with 400', async () => {
    const r = await post(`${w.url}/api/query`, {
      query: { 'metadata.payload': { regex: `${'a'.repeat(257)}` } },
    });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain('query.metadata.payload.regex');
  });

  it('answers (a+)+$ against long values, 100 at once, while /health keeps answering', async () => {
    await expectStormAnswered(w.url);
  }, 120_000);
});
