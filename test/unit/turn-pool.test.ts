import { describe, expect, it } from 'vitest';
import { TurnPool } from '../../src/agent/turn-pool.js';

describe('TurnPool', () => {
  it('orders healthy servers by latency, opens a circuit after 3 failures, and closes it on a healthy probe', async () => {
    const latency: Record<number, number | undefined> = { 3478: 5, 3479: 1 };
    const events: [string, Record<string, unknown>][] = [];
    const pool = new TurnPool({
      servers: [
        { urls: 'turn:127.0.0.1:3478?transport=udp', username: 'u', credential: 'p' },
        { urls: 'turn:127.0.0.1:3479?transport=udp', username: 'u', credential: 'p' },
      ],
      probe: async (_h, port) => {
        const l = latency[port];
        if (l === undefined) throw new Error('down');
        return l;
      },
      onEvent: (name, metadata) => events.push([name, metadata]),
    });
    await pool.check();
    expect(pool.ordered().map((s) => s.urls)).toEqual([
      'turn:127.0.0.1:3479?transport=udp',
      'turn:127.0.0.1:3478?transport=udp',
    ]);
    latency[3479] = undefined;
    await pool.check();
    await pool.check();
    expect(pool.ordered()).toHaveLength(2);
    await pool.check();
    expect(pool.ordered().map((s) => s.urls)).toEqual(['turn:127.0.0.1:3478?transport=udp']);
    expect(events.map((e) => e[0])).toEqual(['turn_server_marked_unhealthy']);
    for (let i = 0; i < 3; i++) pool.failure('turn:127.0.0.1:3478?transport=udp');
    expect(pool.ordered()).toEqual([]);
    expect(events.map((e) => e[0])).toEqual([
      'turn_server_marked_unhealthy',
      'turn_server_marked_unhealthy',
      'all_turn_servers_unhealthy',
    ]);
    latency[3479] = 2;
    await pool.check();
    expect(pool.ordered().map((s) => s.urls)).toEqual([
      'turn:127.0.0.1:3479?transport=udp',
      'turn:127.0.0.1:3478?transport=udp',
    ]);
    expect(events.filter((e) => e[0] === 'turn_server_health_check_success')).toHaveLength(2);
  });

  it('recheck after a lost link: a dead server is out of the order at once, a live one keeps its place, and one recheck runs at a time', async () => {
    const latency: Record<number, number | undefined> = { 3478: 1, 3479: 5 };
    let probes = 0;
    const pool = new TurnPool({
      servers: [
        { urls: 'turn:127.0.0.1:3478?transport=udp', username: 'u', credential: 'p' },
        { urls: 'turn:127.0.0.1:3479?transport=udp', username: 'u', credential: 'p' },
      ],
      probe: async (_h, port) => {
        probes += 1;
        const l = latency[port];
        if (l === undefined) throw new Error('down');
        return l;
      },
      onEvent: () => {},
    });
    await pool.check();
    expect(pool.ordered()[0]!.urls).toBe('turn:127.0.0.1:3478?transport=udp');
    latency[3478] = undefined; // the server the pair relayed through dies
    probes = 0;
    const [a, b] = [pool.recheck(), pool.recheck()];
    expect(a).toBe(b);
    await pool.settled();
    expect(pool.ordered().map((s) => s.urls)).toEqual(['turn:127.0.0.1:3479?transport=udp']);
    // three tries for the dead one (the circuit's threshold), one answer for the live one
    expect(probes).toBe(4);
  });

  it('holds STUN servers too (kind stun): their events say stun, and a recheck drops a dead one', async () => {
    const up: Record<number, boolean> = { 3478: true, 3479: true };
    const events: [string, Record<string, unknown>][] = [];
    const pool = new TurnPool({
      kind: 'stun',
      // A turn: URL is not a STUN server: only stun: and stuns: are held.
      servers: [
        { urls: 'stun:127.0.0.1:3478' },
        { urls: 'stun:127.0.0.1:3479' },
        { urls: 'turn:127.0.0.1:3480' },
      ],
      probe: async (_h, port) => {
        if (!up[port]) throw new Error('down');
        return port - 3477;
      },
      onEvent: (name, metadata) => events.push([name, metadata]),
    });
    expect(pool.size).toBe(2);
    await pool.check();
    up[3478] = false;
    up[3479] = false;
    await pool.recheck();
    expect(pool.ordered()).toEqual([]);
    expect(events).toEqual([
      ['stun_server_marked_unhealthy', { stun_server: 'stun:127.0.0.1:3478', failures: 3 }],
      ['stun_server_marked_unhealthy', { stun_server: 'stun:127.0.0.1:3479', failures: 3 }],
      ['all_stun_servers_unhealthy', { stun_servers: ['stun:127.0.0.1:3478', 'stun:127.0.0.1:3479'] }],
    ]);
  });
});
