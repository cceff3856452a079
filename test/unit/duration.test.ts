// The one duration grammar (src/util/duration.ts) and the flags that read it: a malformed value or an
// unknown flag is refused, exit 2, naming the flag, before the command does anything.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durationFlag } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import { parseTime } from '../../src/services/witness/query.js';
import { parseDuration, prometheusDuration } from '../../src/util/duration.js';
import { run, tempDir } from '../helpers/cli.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1.5s', 1_500],
    ['1h30m', 5_400_000],
    ['1m30s250ms', 90_250],
    [' 10s ', 10_000],
    ['0s', 0],
    ['250', 250],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '',
    's',
    '5 s',
    '5x',
    '-5s',
    '5S',
    '1h-30m',
    '5m5',
    '.5s',
    '1e3',
    'Infinity',
    `${'9'.repeat(400)}s`,
  ])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('counts a bare number in the unit asked, or refuses it', () => {
    expect(parseDuration('30', 's')).toBe(30_000);
    expect(parseDuration('30', null)).toBeUndefined();
    expect(parseDuration('30s', null)).toBe(30_000);
  });

  it('writes Prometheus durations', () => {
    expect(prometheusDuration(90_000)).toBe('1m30s');
    expect(prometheusDuration(500)).toBe('500ms');
    expect(prometheusDuration(3_600_000)).toBe('1h');
    expect(prometheusDuration(0)).toBe('0s');
    expect(parseDuration(prometheusDuration(93_784_005))).toBe(93_784_005);
  });

  it("is the witness's relative time too (POST /api/query)", () => {
    expect(parseTime('-5m', 1_000_000, 'from')).toBe(700_000);
    expect(parseTime('-1h30m', 10_000_000, 'from')).toBe(4_600_000);
    expect(() => parseTime('-5', 1_000_000, 'from')).toThrow(/is not "now"/);
    expect(() => parseTime('5m', 1_000_000, 'from')).toThrow(/is not "now"/);
  });
});

describe('durationFlag', () => {
  it('names the flag and an example when the value is malformed', () => {
    const err = (() => {
      try {
        durationFlag('20x', '--timeout');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toBe('--timeout 20x is not a duration');
    expect((err as UsageError).hint).toContain('--timeout 500ms, 30s, 5m or 1h');
    expect((err as UsageError).exitCode).toBe(2);
  });

  it('enforces its range, naming both ends for people', () => {
    expect(() => durationFlag('10', '--interval', { min: 50 })).toThrow(
      '--interval 10 is out of range: at least 50 ms',
    );
    expect(() => durationFlag('2h', '--timeout', { max: 3_600_000 })).toThrow(
      '--timeout 2h is out of range: from 1 ms to 1 h',
    );
    expect(() => durationFlag('0s', '--timeout')).toThrow(/out of range/);
    expect(durationFlag('0s', '--settle', { min: 0 })).toBe(0);
    expect(() => durationFlag('30d', '--timeout')).toThrow(/out of range/);
  });
});

describe('duration and count flags, end to end', () => {
  let dir: string;
  let cleanup: () => void;
  let closedPort: number;
  beforeAll(async () => {
    ({ dir, cleanup } = tempDir());
    // a port nothing listens on: signaling there is unreachable at once
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    closedPort = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
  });
  afterAll(() => cleanup());

  const fails = async (argv: string[], flag: string) => {
    const r = await run(argv, { cwd: dir });
    expect({ argv, code: r.code }).toEqual({ argv, code: 2 });
    expect(r.stderr).toMatch(new RegExp(`^error: .*${flag}`, 'm'));
    return r;
  };

  it('a malformed duration is exit 2 naming the flag, before any work', async () => {
    // verify would spend 30 attempts on a dead signaling before reading --timeout; it now reads it first
    const r = await fails(
      ['verify', '--timeout', '20x', '--signaling', `http://127.0.0.1:${closedPort}`],
      '--timeout',
    );
    expect(r.stderr).not.toContain('signaling server healthy');
    await fails(['canary', 'status', '--watch', '--timeout', 'soon'], '--timeout');
    await fails(['monitor', '--deployment-id', 'x', '--interval', '10'], '--interval');
    await fails(['rotate-keys', '--timeout', '2h'], '--timeout');
    await fails(['message', 'verify', '--pubkey', 'x', '--max-skew', '5 minutes'], '--max-skew');
    await fails(
      ['witness', 'query', '--since', 'yesterday', '--witness', `http://127.0.0.1:${closedPort}`],
      '--since',
    );
    await fails(
      ['monitoring', 'export', '--for', 'a while', '--signaling', 'http://127.0.0.1:1', '--out', dir],
      '--for',
    );
  });

  it('a malformed count is exit 2 naming the flag', async () => {
    await fails(['logs', '-n', 'abc'], '--lines');
    await fails(['verify', '--agents', 'three'], '--agents');
  });

  it('an unknown flag is exit 2 naming it', async () => {
    const r = await fails(['verify', '--timeot', '20s'], "unknown option '--timeot'");
    expect(r.stderr).toContain('(Did you mean --timeout?)');
  });

  it('a duration with a unit is accepted where a bare number of milliseconds was', async () => {
    // the flags parse, so verify runs and finds signaling unreachable: exit 3, not 2
    const r = await run(
      [
        'verify',
        '--timeout',
        '20s',
        '--retries',
        '1',
        '--interval',
        '10ms',
        '--signaling',
        `http://127.0.0.1:${closedPort}`,
      ],
      { cwd: dir },
    );
    expect(r.stderr).not.toContain('error: --');
    expect(r.code).toBe(3);
  });
});
