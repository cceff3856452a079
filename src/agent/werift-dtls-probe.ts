// A DTLS session between two werift endpoints (DtlsClient and DtlsServer, the classes an
// RTCPeerConnection uses) over two UDP sockets on 127.0.0.1, with every datagram each side sends
// captured and split into DTLS records: the wire evidence that (epoch, sequence number), and with it
// the AES-GCM nonce, is never used twice. It measures whatever werift is loaded; it does not apply
// the fix itself (import ./werift-dtls-fix.js, or ./agent.js as agents do, first).
// Used by test/integration/werift-dtls-nonce.test.ts and, on an installed package, by
// test/e2e/package-install.test.ts.
import { createSocket, type Socket } from 'node:dgram';
import {
  CipherContext,
  DtlsClient,
  DtlsServer,
  HashAlgorithm,
  NamedCurveAlgorithm,
  RTCCertificate,
  SignatureAlgorithm,
  type Transport,
} from 'werift';
import { formatDuration } from '../ui/units.js';

export type DtlsSide = 'client' | 'server';

export interface DtlsRecord {
  /** Who sent it: 'client' / 'server' here, whatever names a caller capturing its own wire uses. */
  sender: string;
  /** 20 change_cipher_spec, 21 alert, 22 handshake, 23 application_data */
  type: number;
  epoch: number;
  seq: number;
  /** The whole record (header and body), hex: a retransmission is byte-identical. */
  bytes: string;
}

export interface DtlsNonceReport {
  records: DtlsRecord[];
  /** Application records each side sent (and the other received). */
  applicationRecords: Record<DtlsSide, number>;
  /** (sender, epoch, seq) that carried two different encrypted records: each one a reused nonce. */
  reused: { sender: string; epoch: number; seq: number; records: number }[];
}

/** Splits one datagram into its DTLS records (RFC 6347 §4.1: 13-byte header, then the body). */
export function parseDtlsRecords(datagram: Buffer, sender: string): DtlsRecord[] {
  const out: DtlsRecord[] = [];
  let at = 0;
  while (at + 13 <= datagram.length) {
    const length = datagram.readUInt16BE(at + 11);
    const end = Math.min(at + 13 + length, datagram.length);
    out.push({
      sender,
      type: datagram[at]!,
      epoch: datagram.readUInt16BE(at + 3),
      seq: datagram.readUIntBE(at + 5, 6),
      bytes: datagram.subarray(at, end).toString('hex'),
    });
    at = end;
  }
  return out;
}

/** Encrypted records (epoch ≥ 1) of one sender that share an (epoch, seq) but not their bytes. */
export function reusedNonces(records: DtlsRecord[]): DtlsNonceReport['reused'] {
  const byKey = new Map<string, { sender: string; epoch: number; seq: number; bodies: Set<string> }>();
  for (const r of records) {
    if (r.epoch === 0) continue;
    const key = `${r.sender}/${r.epoch}/${r.seq}`;
    const entry = byKey.get(key) ?? { sender: r.sender, epoch: r.epoch, seq: r.seq, bodies: new Set() };
    entry.bodies.add(r.bytes);
    byKey.set(key, entry);
  }
  return [...byKey.values()]
    .filter((e) => e.bodies.size > 1)
    .map((e) => ({ sender: e.sender, epoch: e.epoch, seq: e.seq, records: e.bodies.size }));
}

async function loopbackSocket(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  return socket;
}

/**
 * Handshakes, then sends `records` application records each way (each waited for on the other
 * side), and reports every record on the wire. Rejects after `timeoutMs`.
 */
export async function probeDtlsNonces(
  opts: { records?: number; timeoutMs?: number } = {},
): Promise<DtlsNonceReport> {
  const count = opts.records ?? 24;
  const sockets = { client: await loopbackSocket(), server: await loopbackSocket() };
  const records: DtlsRecord[] = [];
  let finished = false;
  const transport = (side: DtlsSide): Transport => {
    const socket = sockets[side];
    const peerPort = sockets[side === 'client' ? 'server' : 'client'].address().port;
    const t: Transport = {
      type: 'udp',
      address: socket.address(),
      closed: false,
      onData: () => {},
      send: (buf: Buffer) =>
        new Promise<void>((resolve) => {
          // werift may still retransmit a flight after the probe is over: drop it.
          if (finished) return resolve();
          records.push(...parseDtlsRecords(buf, side));
          socket.send(buf, peerPort, '127.0.0.1', () => resolve());
        }),
      close: async () => {
        t.closed = true;
      },
    };
    socket.on('message', (buf, from) => t.onData(buf, [from.address, from.port]));
    return t;
  };

  const { certPem, keyPem, signatureHash } = await CipherContext.createSelfSignedCertificateWithKey(
    { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 },
    NamedCurveAlgorithm.secp256r1_23,
  );
  const cert = new RTCCertificate(keyPem, certPem, signatureHash);
  const common = { cert: cert.certPem, key: cert.privateKey, signatureHash, extendedMasterSecret: true };
  const server = new DtlsServer({
    ...common,
    transport: transport('server'),
    certificateRequest: true,
  });
  const client = new DtlsClient({ ...common, transport: transport('client') });

  const received: Record<DtlsSide, number> = { client: 0, server: 0 };
  client.onData.subscribe(() => {
    received.client += 1;
  });
  server.onData.subscribe(() => {
    received.server += 1;
  });

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`DTLS probe timed out after ${formatDuration(opts.timeoutMs ?? 10_000)}`)),
      opts.timeoutMs ?? 10_000,
    );
  });
  const until = async (done: () => boolean) => {
    while (!done()) await new Promise((r) => setTimeout(r, 5));
  };
  try {
    await Promise.race([
      (async () => {
        const connected = Promise.all([
          new Promise<void>((r) => client.onConnect.once(() => r())),
          new Promise<void>((r) => server.onConnect.once(() => r())),
        ]);
        // Not awaited (as RTCDtlsTransport does): it resolves only once flight 1's retransmit timer ends.
        client.connect().catch(() => {});
        await connected;
        for (let i = 0; i < count; i++) {
          await client.send(Buffer.from(`client record ${i}`));
          await server.send(Buffer.from(`server record ${i}`));
        }
        await until(() => received.client >= count && received.server >= count);
      })(),
      timeout,
    ]);
  } finally {
    finished = true;
    clearTimeout(timer);
    for (const s of Object.values(sockets)) s.close();
  }
  const applicationRecords = {
    client: records.filter((r) => r.sender === 'client' && r.type === 23).length,
    server: records.filter((r) => r.sender === 'server' && r.type === 23).length,
  };
  return { records, applicationRecords, reused: reusedNonces(records) };
}
