// werift's DTLS AES-GCM nonce fix, carried in ifmesh's own build so that every install runs it:
// `npm ci`, `npm ci --omit=dev`, an installed `npm pack` tarball and `--ignore-scripts` alike.
//
// The defect (werift 0.24.4 and 0.25.2; flight5.js / flight6.js `sendFinished()`): the epoch-1
// Finished record takes the next epoch-0 record number (say 8), then the counter is reset to 0, so
// the 8th application record is sent as (epoch 1, seq 8) again. The AES-GCM nonce is the write salt
// plus epoch and sequence number, so two different plaintexts are encrypted under one key and nonce:
// a nonce reuse (and Chromium drops the second record as a replay).
//
// The fix sits at the one place every DTLS record is encrypted, `CipherContext.encryptPacket` (an
// exported class of werift's ESM entry, so no module hook and no file on disk is touched), and
// enforces the property itself rather than one code path: under one set of write keys, the first
// record of an epoch is sequence number 0 (RFC 6347 §4.1: counters start at 0 in each epoch) and no
// later record may go back to a number already used. On werift 0.24.4 that numbers Finished (1, 0)
// and the application records (1, 1), (1, 2)… exactly as the RFC does; with a werift that numbers
// correctly it changes nothing but Finished's number. Importing this module applies the fix, proves it
// on a stub cipher and throws, naming the fix, when it cannot: no agent runs an unfixed werift.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as werift from 'werift';
import { ExitCode, IfmeshError } from '../errors.js';

/** werift versions on which test/integration/werift-dtls-nonce.test.ts proved the fix on the wire. */
export const TESTED_WERIFT_VERSIONS: readonly string[] = ['0.24.4'];

const MARK = Symbol.for('ifmesh.werift.dtls-nonce-fix');
const FIX = 'the werift DTLS nonce fix (src/agent/werift-dtls-fix.ts)';

export interface DtlsNonceFixStatus {
  /** werift's version as its package.json says, or 'unknown'. */
  version: string;
  /** On a version the wire test covers (TESTED_WERIFT_VERSIONS). */
  tested: boolean;
  applied: true;
}

interface RecordHeader {
  epoch: number;
  sequenceNumber: number;
  contentType?: number;
  protocolVersion?: { major: number; minor: number };
  contentLen?: number;
}
interface Packet {
  recordLayerHeader: RecordHeader;
  fragment: Buffer;
}
type EncryptPacket = (this: { cipher?: unknown }, pkt: Packet) => Packet;
interface CipherContextClass {
  prototype: { encryptPacket?: EncryptPacket; [MARK]?: DtlsNonceFixStatus };
}

export class WeriftDtlsFixError extends IfmeshError {
  constructor(reason: string, version: string) {
    super(
      'werift_dtls_unfixed',
      `${FIX} cannot be applied to werift ${version}: ${reason}. Unfixed, werift reuses an AES-GCM ` +
        'nonce (its epoch-1 Finished record number) after every DTLS handshake, so ifmesh refuses to run it',
      ExitCode.checkFailed,
      `install the werift version ifmesh pins (${TESTED_WERIFT_VERSIONS.join(', ')}: npm ci, or reinstall ` +
        'ifmesh), or port the fix to this werift and add it to TESTED_WERIFT_VERSIONS once its wire test passes',
    );
  }
}

/**
 * Wraps `CipherContext.prototype.encryptPacket` of the given werift module (idempotent), then checks
 * on a stub cipher that what reaches the AEAD is a unique (epoch, sequence number) even when werift
 * hands over its buggy order. Throws WeriftDtlsFixError when the class is not there, not shaped as
 * expected, or the check fails.
 */
export function applyDtlsNonceFix(mod: Record<string, unknown>, version: string): DtlsNonceFixStatus {
  const CipherContext: unknown = mod.CipherContext;
  if (typeof CipherContext !== 'function')
    throw new WeriftDtlsFixError('it exports no CipherContext', version);
  const proto = (CipherContext as CipherContextClass).prototype;
  const done = proto[MARK];
  if (done) return done;
  const original = proto.encryptPacket;
  if (typeof original !== 'function')
    throw new WeriftDtlsFixError('CipherContext.encryptPacket(pkt) is not there', version);

  // Per set of write keys (`this.cipher`, a new object at every handshake) and epoch: the next free
  // sequence number. Weak: it goes with the session.
  const next = new WeakMap<object, Map<number, number>>();
  const encryptPacket: EncryptPacket = function (this, pkt) {
    const keys = this.cipher;
    const header = pkt?.recordLayerHeader;
    if (typeof keys === 'object' && keys !== null && header) {
      const epochs = next.get(keys) ?? new Map<number, number>();
      next.set(keys, epochs);
      const free = epochs.get(header.epoch);
      const seq = free === undefined ? 0 : Math.max(header.sequenceNumber, free);
      header.sequenceNumber = seq;
      epochs.set(header.epoch, seq + 1);
    }
    return original.call(this, pkt);
  };
  const status: DtlsNonceFixStatus = {
    version,
    tested: TESTED_WERIFT_VERSIONS.includes(version),
    applied: true,
  };
  proto.encryptPacket = encryptPacket;
  try {
    selfCheck(encryptPacket);
  } catch (err) {
    proto.encryptPacket = original;
    throw new WeriftDtlsFixError(
      `its encryptPacket does not take the record number from the header (${(err as Error).message})`,
      version,
    );
  }
  Object.defineProperty(proto, MARK, { value: status });
  return status;
}

/** werift 0.24.4's order on a stub cipher: Finished at (1, 8), then application records from (1, 1). */
function selfCheck(encryptPacket: EncryptPacket): void {
  const seen = new Set<string>();
  const stub = {
    sessionType: 1,
    cipher: {
      encrypt(_type: number, data: Buffer, h: RecordHeader) {
        const key = `${h.epoch}:${h.sequenceNumber}`;
        if (seen.has(key)) throw new Error(`(epoch, seq) ${key} reached the cipher twice`);
        seen.add(key);
        return data;
      },
    },
  };
  const record = (sequenceNumber: number): Packet => ({
    recordLayerHeader: {
      contentType: 23,
      protocolVersion: { major: 254, minor: 253 },
      epoch: 1,
      sequenceNumber,
      contentLen: 1,
    },
    fragment: Buffer.alloc(1),
  });
  encryptPacket.call(stub, record(8));
  for (let seq = 1; seq <= 12; seq++) encryptPacket.call(stub, record(seq));
  if (seen.size !== 13) throw new Error(`${seen.size} of 13 records reached the cipher`);
}

/** werift's version, from the package.json of the werift this module resolves. */
export function weriftVersion(): string {
  try {
    let dir = path.dirname(createRequire(import.meta.url).resolve('werift'));
    for (let up = 0; up < 6; up++, dir = path.dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === 'werift') return pkg.version ?? 'unknown';
      } catch {
        // not the package root yet
      }
    }
  } catch {
    // not resolvable: the import above would have failed first
  }
  return 'unknown';
}

/** Applied once, when this module is first imported (src/agent/agent.ts imports it before werift). */
export const weriftDtlsFix: DtlsNonceFixStatus = applyDtlsNonceFix(
  werift as unknown as Record<string, unknown>,
  weriftVersion(),
);
