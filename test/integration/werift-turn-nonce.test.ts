// werift's TURN client after the server's nonce changes (438 Stale Nonce). coturn here issues nonces
// good for 1 s, so the next ChannelBind after that is answered 438 with a new nonce. Unfixed werift
// 0.24.4 drops that answer (it carries no MESSAGE-INTEGRITY) and, were it seen, re-signs over its old
// signature: the bind times out and the relay is dead. With src/agent/werift-turn-fix.ts the client
// takes the new nonce, the bind succeeds and data flows through the channel.
import dgram from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { createTurnClient, type TurnProtocol } from 'werift';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { startCoturn } from '../helpers/coturn.js';
import { waitFor } from '../helpers/wait.js';

const MARK = Symbol.for('ifmesh.werift.turn-nonce-fix');

describe('the werift TURN stale-nonce fix', () => {
  let coturn: RunningTurnserver | undefined;
  let turn: TurnProtocol | undefined;
  let peer: dgram.Socket | undefined;
  afterAll(async () => {
    await turn?.close().catch(() => {});
    peer?.close();
    await coturn?.stop();
  });

  it('is applied by importing the agent module', async () => {
    const { TurnProtocol } = await import('werift');
    expect((TurnProtocol.prototype as unknown as Record<symbol, unknown>)[MARK]).toBeUndefined();
    await import('../../src/agent/agent.js');
    const { weriftTurnFix } = await import('../../src/agent/werift-turn-fix.js');
    expect((TurnProtocol.prototype as unknown as Record<symbol, unknown>)[MARK]).toBe(weriftTurnFix);
  });

  it('binds a channel after coturn made the nonce stale, and relays through it', async () => {
    coturn = await startCoturn('ifmesh', 'test-pass', { staleNonceSeconds: 1 });
    const port = Number(new URL(coturn.stunUrl.replace('stun:', 'stun://')).port);
    turn = await createTurnClient({
      address: ['127.0.0.1', port],
      username: 'ifmesh',
      password: 'test-pass',
    });
    const first = turn.nonce;
    expect(first).toBeDefined();
    peer = dgram.createSocket('udp4');
    await new Promise<void>((r) => peer!.bind(0, '127.0.0.1', () => r()));
    const got: Buffer[] = [];
    peer.on('message', (m) => got.push(m));
    // Past the nonce's 1 s lifetime (coturn counts whole seconds): the precondition, not a measurement.
    await new Promise((r) => setTimeout(r, 2_500));
    const target: [string, number] = ['127.0.0.1', peer.address().port];
    await turn.sendData(Buffer.from('through the channel'), target);
    // The bind (or, failing it, the permission) had to go through a 438 and the new nonce.
    expect(turn.nonce).not.toEqual(first);
    expect(Object.keys((turn as unknown as { channelByAddr: object }).channelByAddr)).toHaveLength(1);
    await waitFor(() => got.some((m) => m.toString() === 'through the channel'), 'the relayed datagram');
  }, 30_000);
});
