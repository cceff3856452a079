// The hostile-regex test of witness-regex.test.ts against a witness process on PostgreSQL: regexes
// are evaluated with RE2 semantics in slices, so (a+)+$ over long values is answered (200, or 503
// query_timeout at the query deadline) and /health keeps answering meanwhile.

import path from 'node:path';
import { RE2JS } from 're2js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { postgresForThisFile } from '../helpers/postgres.js';
import { type Service, startWitnessProcess } from '../helpers/processes.js';
import { expectStormAnswered, logLongValues } from '../helpers/regex-storm.js';
import { post } from '../helpers/witness.js';

const server = postgresForThisFile();
let w: Service;
let cleanup: () => void;
beforeAll(async () => {
  const t = tempDir();
  cleanup = t.cleanup;
  w = await startWitnessProcess(await server().createDatabase(), ['--key', path.join(t.dir, 'witness.key')]);
  await logLongValues(w.url);
}, 120_000);
afterAll(async () => {
  await w?.stop();
  cleanup?.();
});

describe('regex queries on PostgreSQL, prefiltered in SQL', () => {
  it('find exactly the matching events, wildcard characters of LIKE included', async () => {
    const notes = ['50%_off', '50 off', '5000_off', 'x_y', 'xay', 'back\\slash', 'say "hi"'];
    const events = notes.map((note, i) => ({
      event: i % 2 ? 'prefilter_odd' : 'prefilter_even',
      metadata: { note },
    }));
    expect((await post(`${w.url}/api/log`, events)).status).toBe(201);
    const found = async (query: Record<string, unknown>) => {
      const r = await post(`${w.url}/api/query`, { query, limit: 50 });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      return r.json.results.map((e: { metadata: { note: string } }) => e.metadata.note).sort();
    };
    expect(await found({ 'metadata.note': { regex: '50%_off' } })).toEqual(['50%_off']);
    expect(await found({ 'metadata.note': { regex: '^x_y$' } })).toEqual(['x_y']);
    expect(await found({ 'metadata.note': { regex: '^x.y$' } })).toEqual(['x_y', 'xay']);
    expect(await found({ 'metadata.note': { regex: 'back\\\\slash' } })).toEqual(['back\\slash']);
    expect(await found({ 'metadata.note': { regex: 'say "hi"' } })).toEqual(['say "hi"']);
    expect(await found({ 'metadata.note': { regex: '0+_off$' } })).toEqual(['5000_off']);
    // An indexed field is prefiltered on its own column.
    expect(await found({ event: { regex: '^prefilter_ev.n$' } })).toEqual(
      ['50%_off', '5000_off', 'say "hi"', 'xay'].sort(),
    );
  });
});

describe('the SQL prefilter never drops a match', () => {
  // Notes mixing case, the non-ASCII members of k's and s's RE2 case orbits, LIKE wildcards, JSON
  // escapes and escapes of the regex syntax; each pattern's answer through PostgreSQL (prefiltered)
  // must be exactly re2js over every note (unfiltered).
  const fixed = [
    'error',
    'Error',
    'ERROR',
    'eRRoR',
    'errr',
    'terror!',
    'warning',
    'Kelvin',
    '\u212Aelvin',
    'kelvin',
    'status',
    'STATUS',
    '\u017Ftatus',
    'disk_full',
    'DISK_FULL',
    'a.b',
    'axb',
    'A%B',
    '50%_off',
    'x(y)z',
    'say "hi"',
    'back\\slash',
    'Adef',
    '41def',
    'tab\there',
    'ab|cd',
    'abcd',
    'cd',
    'xyz',
    'XyZ',
    '',
  ];
  const alphabet = [
    'a',
    'b',
    'A',
    'e',
    'E',
    'r',
    'R',
    'o',
    'k',
    'K',
    '\u212A',
    's',
    'S',
    '\u017F',
    '.',
    '%',
    '_',
    '"',
  ];
  let seed = 11;
  const rand = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  const generated = Array.from({ length: 300 }, () =>
    Array.from({ length: 1 + rand(10) }, () => alphabet[rand(alphabet.length)]!).join(''),
  );
  const notes = [...fixed, ...generated];
  const patterns = [
    '(?i)error',
    '(?i)ERROR',
    'error',
    'err(or)?',
    'E?rror',
    '[Ee]rror',
    '(?i:err)or',
    'er{2}or',
    'e(?:r|R){2}o',
    '(?U)er+?o',
    '(?s).*err.*',
    '(?i)kelvin',
    '(?i)status',
    '(?i)disk_full',
    '(?i)ab|cd',
    'ab|cd',
    'ab\\|cd',
    'a.b',
    'a\\.b',
    'A%B',
    '50%_off',
    'x\\(y\\)z',
    '"hi"',
    'back\\\\slash',
    '\\x41def',
    '\\pLdef',
    '\\x{41}def',
    '\\101def',
    '(?-i)error',
    '(?im)^err',
    'tab\\there',
    '(?i)aab',
    '(?i)rRo',
    'abc(?i)d',
    '(?i)s{2}',
    '(?i)[k]elvin',
    'k+',
    '(?P<x>ab)+cd',
    'ab?cd',
  ];
  it('answers every pattern exactly as re2js over all notes', async () => {
    for (let start = 0; start < notes.length; start += 100) {
      const events = notes.slice(start, start + 100).map((note) => ({ event: 'corpus', metadata: { note } }));
      expect((await post(`${w.url}/api/log`, events)).status).toBe(201);
    }
    for (const pattern of patterns) {
      const re = RE2JS.compile(pattern);
      const want = notes.filter((n) => re.test(n)).sort();
      const r = await post(`${w.url}/api/query`, {
        query: { event: 'corpus', 'metadata.note': { regex: pattern } },
        limit: 10_000,
      });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      const got = r.json.results.map((e: { metadata: { note: string } }) => e.metadata.note).sort();
      expect(got, pattern).toEqual(want);
    }
  });
});

describe('hostile regular expressions on PostgreSQL', () => {
  it('refuses a pattern over 256 characters with 400', async () => {
    const r = await post(`${w.url}/api/query`, {
      query: { 'metadata.payload': { regex: `${'a'.repeat(257)}` } },
    });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain('query.metadata.payload.regex');
  });

  it('answers (a+)+$ against long values, 100 at once, 200 or 503 query_timeout, while /health keeps answering', async () => {
    await expectStormAnswered(w.url);
  }, 120_000);
});
