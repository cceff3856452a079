// werift's TURN client: its stale-nonce (438) handling, fixed in ifmesh's own build the way the DTLS
// nonce fix is (src/agent/werift-dtls-fix.ts): werift's exported TurnProtocol class is patched when
// this module is imported, so every install runs it (`npm ci --omit=dev`, a packed tarball) with no
// patch tool and no file on disk touched.
//
// The defects (werift 0.24.4, lib/ice/src/turn/protocol.ts), upstream text:
//
//   TURN client never recovers from 438 Stale Nonce (or a 401 re-challenge) after allocation.
//   1. `handleSTUNMessage` (and then `Transaction.responseReceived`) verifies every response to a
//      request sent with the session's integrity key and drops it when it carries no valid
//      MESSAGE-INTEGRITY. A server's
//      401 and 438 error responses are challenges and are not integrity-protected (RFC 8489
//      §9.2.4, coturn sends them without MESSAGE-INTEGRITY), so they are dropped as
//      "TURN STUN response failed MESSAGE-INTEGRITY check" and the request times out
//      (TransactionTimeout, "channelBind error") instead of being retried with the new nonce.
//   2. `requestWithRetry` re-sends the same Message after updating NONCE, and `request` appends
//      MESSAGE-INTEGRITY and FINGERPRINT again while the previous attempt's are still in the
//      attribute list: the new HMAC covers the stale MESSAGE-INTEGRITY and FINGERPRINT, so the
//      server rejects the retry too.
//   Effect: once the server's nonce changes (coturn --stale-nonce, default 600 s in many configs;
//   or a session the server closed), CreatePermission, ChannelBind and Refresh all fail and the
//   relay candidate is dead. Fix: accept unauthenticated 401/438 error responses for the matching
//   transaction (they carry only a challenge: NONCE and REALM), and strip MESSAGE-INTEGRITY and
//   FINGERPRINT before signing a request again.
//
// Importing this module applies the fix; it throws, naming the fix, when the class is not shaped as
// expected: no agent runs a werift whose TURN client cannot refresh its nonce.
// test/integration/werift-turn-nonce.test.ts proves it against coturn with a 1 s nonce lifetime.
import * as werift from 'werift';
import { ExitCode, IfmeshError } from '../errors.js';
import { weriftVersion } from './werift-dtls-fix.js';

const MARK = Symbol.for('ifmesh.werift.turn-nonce-fix');
const FIX = 'the werift TURN stale-nonce fix (src/agent/werift-turn-fix.ts)';
/** STUN error class and the challenges a server sends unsigned. */
const ERROR_CLASS = 0x110;
const CHALLENGES = new Set([401, 438]);

interface StunMessage {
  messageClass: number;
  transactionIdHex: string;
  attributes: [string, unknown][];
  getAttributeValue(name: string): unknown;
}
interface Transaction {
  integrityKey?: Buffer;
  responseReceived(message: StunMessage, addr: unknown): void;
}
interface TurnProto {
  transactions: Record<string, Transaction>;
  handleSTUNMessage?: (data: Buffer, addr: unknown) => void;
  request?: (request: StunMessage, ...rest: unknown[]) => Promise<unknown>;
  [MARK]?: TurnNonceFixStatus;
}

export interface TurnNonceFixStatus {
  version: string;
  applied: true;
}

export class WeriftTurnFixError extends IfmeshError {
  constructor(reason: string, version: string) {
    super(
      'werift_turn_unfixed',
      `${FIX} cannot be applied to werift ${version}: ${reason}. Unfixed, a relayed connection dies when the TURN server's nonce changes`,
      ExitCode.checkFailed,
      'install the werift version ifmesh pins (npm ci, or reinstall ifmesh), or port the fix to this werift',
    );
  }
}

function errorCode(m: StunMessage): number | undefined {
  const v = m.getAttributeValue('ERROR-CODE');
  return Array.isArray(v) && typeof v[0] === 'number' ? v[0] : undefined;
}

export function applyTurnNonceFix(mod: Record<string, unknown>, version: string): TurnNonceFixStatus {
  const TurnProtocol: unknown = mod.TurnProtocol;
  const parseMessage = mod.parseMessage as ((data: Buffer) => StunMessage | undefined) | undefined;
  if (typeof TurnProtocol !== 'function' || typeof parseMessage !== 'function')
    throw new WeriftTurnFixError('it exports no TurnProtocol or parseMessage', version);
  const proto = (TurnProtocol as { prototype: TurnProto }).prototype;
  if (proto[MARK]) return proto[MARK];
  const handle = proto.handleSTUNMessage;
  const request = proto.request;
  if (typeof handle !== 'function' || typeof request !== 'function')
    throw new WeriftTurnFixError('TurnProtocol.handleSTUNMessage or request is not there', version);

  proto.handleSTUNMessage = function (this: TurnProto, data: Buffer, addr: unknown) {
    const m = parseMessage(data);
    const tx = m ? this.transactions?.[m.transactionIdHex] : undefined;
    // A challenge answers a signed request unsigned: hand it to the transaction, whose caller
    // (requestWithRetry) takes the new NONCE (and REALM) and signs the request again.
    // The transaction itself refuses unsigned answers once it holds a key, so it lets go of the key
    // for this one: the challenge is its last answer (the retry is a new transaction).
    if (m && tx?.integrityKey && m.messageClass === ERROR_CLASS && CHALLENGES.has(errorCode(m) ?? 0)) {
      tx.integrityKey = undefined;
      tx.responseReceived(m, addr);
      return;
    }
    return handle.call(this, data, addr);
  };
  proto.request = function (this: TurnProto, req: StunMessage, ...rest: unknown[]) {
    // A retry re-sends the same Message: last attempt's signature must not be signed over.
    if (Array.isArray(req?.attributes))
      req.attributes = req.attributes.filter(([k]) => k !== 'MESSAGE-INTEGRITY' && k !== 'FINGERPRINT');
    return request.call(this, req, ...rest);
  };
  const status: TurnNonceFixStatus = { version, applied: true };
  Object.defineProperty(proto, MARK, { value: status });
  return status;
}

/** Applied once, when this module is first imported (src/agent/agent.ts imports it before werift is used). */
export const weriftTurnFix: TurnNonceFixStatus = applyTurnNonceFix(
  werift as unknown as Record<string, unknown>,
  weriftVersion(),
);
