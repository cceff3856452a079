import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, freePortRange } from '../../src/ops/stack/stack.js';

const ephemeralLow = Number(
  readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
);

describe('freePort (ports `up` plans and binds seconds later)', () => {
  it('plans below the kernel ephemeral range, never the same port twice, and each one binds', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 40; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const p of ports) expect(p).toBeLessThan(ephemeralLow);
    // An outgoing connection's source port comes from the ephemeral range: it cannot take these.
    const s = createServer();
    await new Promise<void>((r, j) => s.once('error', j).listen(ports[0], '127.0.0.1', () => r()));
    await new Promise<void>((r) => s.close(() => r()));
  });

  it('hands out consecutive ranges that do not overlap', async () => {
    const a = await freePortRange(3);
    const b = await freePortRange(3);
    expect(a + 3 <= b || b + 3 <= a).toBe(true);
    expect(Math.max(a, b) + 3).toBeLessThanOrEqual(ephemeralLow);
  });
});
