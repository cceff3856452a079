import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StunError, stunBinding, turnAllocate } from '../../src/clients/stun.js';
import { parseIceUrl } from '../../src/config/ice-url.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { systemClock } from '../../src/util/clock.js';
import { startCoturn } from '../helpers/coturn.js';
import { freePort } from '../helpers/processes.js';

let coturn: RunningTurnserver;
let target: { host: string; port: number };
const o = { timeoutMs: 3_000, clock: systemClock };

beforeAll(async () => {
  coturn = await startCoturn('probe-user', 'right-pass');
  const u = parseIceUrl(coturn.url, ['turn']);
  if (typeof u === 'string') throw new Error(u);
  target = { host: u.host, port: u.port };
});
afterAll(async () => {
  await coturn?.stop();
});

describe('STUN/TURN client against real coturn', () => {
  it('gets a Binding answer with our mapped loopback address', async () => {
    const r = await stunBinding(target, o);
    expect(r.mapped).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('fails a server whose name does not resolve, as an error and never a crash', async () => {
    // The resolver is injected, so the test asks no DNS server (traffic stays on this machine).
    const lookup = ((_host: string, _opts: unknown, cb: (err: NodeJS.ErrnoException) => void) => {
      const err: NodeJS.ErrnoException = new Error('getaddrinfo ENOTFOUND stun.example.invalid');
      err.code = 'ENOTFOUND';
      process.nextTick(() => cb(err));
    }) as never;
    const where = { host: 'stun.example.invalid', port: 3478 };
    await expect(stunBinding(where, { ...o, lookup })).rejects.toThrow(
      new StunError('stun.example.invalid:3478: ENOTFOUND'),
    );
    await expect(
      turnAllocate(where, { username: 'u', password: 'p' }, { ...o, lookup }),
    ).rejects.toBeInstanceOf(StunError);
  });

  it('times out on a port where nothing answers', async () => {
    const dead = { host: '127.0.0.1', port: await freePort() };
    await expect(stunBinding(dead, { ...o, timeoutMs: 600 })).rejects.toThrow(/no STUN answer|ECONNREFUSED/);
  });

  it('allocates a relay with the right password and releases it', async () => {
    const r = await turnAllocate(target, { username: 'probe-user', password: 'right-pass' }, o);
    expect(r.relayed).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(r.realm).toBe('ifmesh');
    // turnAllocate resolves only once coturn answered the release (Refresh, LIFETIME 0) with success.
  });

  it('is refused with 401 for a wrong password', async () => {
    const err = await turnAllocate(target, { username: 'probe-user', password: 'wrong' }, o).catch((e) => e);
    expect(err).toBeInstanceOf(StunError);
    expect((err as StunError).code).toBe(401);
  });
});
