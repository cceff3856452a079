// werift's DTLS AES-GCM nonce: the nonce is the write salt plus (epoch, sequence number), so that pair
// must never carry two different records from one sender. Unfixed werift 0.24.4 sends its epoch-1
// Finished as (1, 7) or (1, 8), resets its counter and sends an application record with the same pair.
// These tests capture the records on the wire (UDP on 127.0.0.1) and fail on any reuse; with the fix
// in src/agent/werift-dtls-fix.ts disabled they fail on both the client's and the server's side.
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CipherContext, type RTCDataChannel, RTCPeerConnection } from 'werift';
import {
  type DtlsRecord,
  parseDtlsRecords,
  probeDtlsNonces,
  reusedNonces,
} from '../../src/agent/werift-dtls-probe.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { startCoturn } from '../helpers/coturn.js';
import { waitFor } from '../helpers/wait.js';

const MARK = Symbol.for('ifmesh.werift.dtls-nonce-fix');
const marked = () => (CipherContext.prototype as unknown as Record<symbol, unknown>)[MARK];

/** Each sender's encrypted records in the order sent: (epoch, seq) must only go up. */
function epochOneSeqs(records: DtlsRecord[], sender: string): number[] {
  return records.filter((r) => r.sender === sender && r.epoch === 1).map((r) => r.seq);
}

describe('the werift DTLS nonce fix', () => {
  it('is applied by importing the agent module, before any agent exists', async () => {
    // Nothing in this file has imported the fix yet: werift is as npm installed it.
    expect(marked()).toBeUndefined();
    await import('../../src/agent/agent.js');
    const { weriftDtlsFix, TESTED_WERIFT_VERSIONS } = await import('../../src/agent/werift-dtls-fix.js');
    expect(marked()).toBe(weriftDtlsFix);
    expect(weriftDtlsFix).toMatchObject({ applied: true, tested: true });
    // A werift upgrade fails here until the wire tests below have passed on it and it is listed.
    expect(TESTED_WERIFT_VERSIONS).toContain(weriftDtlsFix.version);
  });

  it('DtlsClient ↔ DtlsServer over loopback UDP: no (epoch, seq) carries two records, 24 each way', async () => {
    const report = await probeDtlsNonces({ records: 24, timeoutMs: 15_000 });
    expect(report.applicationRecords.client).toBeGreaterThanOrEqual(24);
    expect(report.applicationRecords.server).toBeGreaterThanOrEqual(24);
    expect(report.reused).toEqual([]);
    for (const side of ['client', 'server']) {
      const seqs = epochOneSeqs(report.records, side);
      // Finished is the first record of epoch 1, numbered 0 (RFC 6347 §4.1); then strictly upward.
      expect(report.records.find((r) => r.sender === side && r.epoch === 1)).toMatchObject({
        type: 22,
        seq: 0,
      });
      expect(seqs.length).toBeGreaterThan(10);
      for (let i = 1; i < seqs.length; i++)
        expect(seqs[i], `${side} record ${i}`).toBeGreaterThan(seqs[i - 1]!);
    }
  });

  it('names the sender, epoch and sequence number of a reuse (the detector works)', () => {
    const record = (type: number, epoch: number, seq: number, body: string) => {
      const b = Buffer.alloc(13 + body.length);
      b.writeUInt8(type, 0);
      b.writeUInt16BE(0xfefd, 1);
      b.writeUInt16BE(epoch, 3);
      b.writeUIntBE(seq, 5, 6);
      b.writeUInt16BE(body.length, 11);
      b.write(body, 13);
      return b;
    };
    // What unfixed werift sends: Finished (1, 7), then application records from (1, 1). One datagram
    // may hold several records; a byte-identical retransmission is not a reuse.
    const wire = [
      Buffer.concat([record(20, 0, 6, 'c'), record(22, 1, 7, 'finished')]),
      record(22, 1, 7, 'finished'),
      ...Array.from({ length: 8 }, (_, i) => record(23, 1, i + 1, `app ${i}`)),
    ];
    const records = wire.flatMap((d) => parseDtlsRecords(d, 'client'));
    expect(records).toHaveLength(11);
    expect(reusedNonces(records)).toEqual([{ sender: 'client', epoch: 1, seq: 7, records: 2 }]);
  });
});

describe('RTCPeerConnection ↔ RTCPeerConnection (what agents run)', () => {
  let turn: RunningTurnserver;
  const pcs: RTCPeerConnection[] = [];
  const sent: DtlsRecord[] = [];
  const send = dgram.Socket.prototype.send;
  beforeAll(async () => {
    turn = await startCoturn();
    // Every datagram any socket of this process sends, kept if it is DTLS (RFC 7983: first byte
    // 20-63), named by the sending socket's local port: one per RTCPeerConnection here.
    dgram.Socket.prototype.send = function (this: dgram.Socket, msg: unknown, ...rest: unknown[]) {
      if (Buffer.isBuffer(msg) && msg[0]! >= 20 && msg[0]! <= 63)
        sent.push(...parseDtlsRecords(msg, `port ${this.address().port}`));
      return (send as (...a: unknown[]) => void).call(this, msg, ...rest);
    } as typeof send;
  });
  afterAll(async () => {
    dgram.Socket.prototype.send = send;
    for (const pc of pcs) await pc.close().catch(() => {});
    await turn?.stop();
  });

  it('a DataChannel with 30 messages each way never reuses an (epoch, seq) on either side', async () => {
    const config = () =>
      new RTCPeerConnection({
        iceServers: [{ urls: turn.stunUrl }],
        iceUseIpv4: false,
        iceUseIpv6: false,
        iceAdditionalHostAddresses: ['127.0.0.1'],
      });
    const a = config();
    const b = config();
    pcs.push(a, b);
    const received = { a: 0, b: 0 };
    const channelA = a.createDataChannel('nonce');
    let channelB: RTCDataChannel | undefined;
    b.onDataChannel.subscribe((c) => {
      channelB = c;
      c.onMessage.subscribe(() => {
        received.b += 1;
      });
    });
    channelA.onMessage.subscribe(() => {
      received.a += 1;
    });
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription!);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription!);
    await waitFor(
      () => channelA.readyState === 'open' && channelB?.readyState === 'open',
      'both channel ends open',
      {
        timeoutMs: 20_000,
      },
    );
    for (let i = 0; i < 30; i++) {
      channelA.send(`from a ${i}`);
      channelB!.send(`from b ${i}`);
    }
    await waitFor(() => received.a >= 30 && received.b >= 30, 'every message delivered', {
      timeoutMs: 20_000,
    });

    const senders = [...new Set(sent.filter((r) => r.epoch === 1).map((r) => r.sender))];
    expect(senders).toHaveLength(2);
    for (const s of senders) expect(epochOneSeqs(sent, s).length, s).toBeGreaterThan(10);
    expect(reusedNonces(sent)).toEqual([]);
  });
});
