// The STUN client (src/clients/stun.ts) builds and parses messages with werift's code; these are the
// RFC 5769 test vectors that code must honour for our Binding and Allocate checks to mean anything.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { classes, Message, makeIntegrityKey, methods, parseMessage } from 'werift';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 5769 §2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT.
const SAMPLE_REQUEST = hex(`
  0001 0058 2112a442 b7e7a701 bc34d686 fa87dfae
  8022 0010 5354554e 20746573 7420636c 69656e74
  0024 0004 6e0001ff
  8029 0008 932ff9b1 51263b36
  0006 0009 6576746a 3a683676 59202020
  0008 0014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
  8028 0004 e57a3bcf`);
const REQUEST_PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt';

// RFC 5769 §2.2: Binding success response, XOR-MAPPED-ADDRESS 192.0.2.1:32853.
const SAMPLE_IPV4_RESPONSE = hex(`
  0101 003c 2112a442 b7e7a701 bc34d686 fa87dfae
  8022 000b 74657374 20766563 746f7220
  0020 0008 0001a147 e112a643
  0008 0014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
  8028 0004 c07d4c96`);

describe('RFC 5769 test vectors through the STUN code the client uses', () => {
  it('accepts the sample request with its password, and refuses it with another', () => {
    const m = parseMessage(SAMPLE_REQUEST, Buffer.from(REQUEST_PASSWORD));
    expect(m?.messageMethod).toBe(methods.BINDING);
    expect(m?.messageClass).toBe(classes.REQUEST);
    expect(m?.getAttributeValue('USERNAME')).toBe('evtj:h6vY');
    expect(parseMessage(SAMPLE_REQUEST, Buffer.from('not-the-password'))).toBeUndefined();
  });

  it('refuses the sample request once a byte is flipped (FINGERPRINT)', () => {
    const bad = Buffer.from(SAMPLE_REQUEST);
    bad.writeUInt8(bad.readUInt8(30) ^ 1, 30);
    expect(parseMessage(bad)).toBeUndefined();
  });

  it('reads XOR-MAPPED-ADDRESS from the sample IPv4 response', () => {
    const m = parseMessage(SAMPLE_IPV4_RESPONSE, Buffer.from(REQUEST_PASSWORD));
    expect(m?.messageClass).toBe(classes.RESPONSE);
    expect(m?.getAttributeValue('XOR-MAPPED-ADDRESS')).toEqual(['192.0.2.1', 32853]);
  });

  it('derives the long-term key as MD5(username:realm:password) (RFC 5389 §15.4)', () => {
    const key = makeIntegrityKey('user', 'realm', 'pass');
    expect(key).toEqual(createHash('md5').update('user:realm:pass').digest());
    // An Allocate signed with it verifies with the same key only.
    const req = new Message(methods.ALLOCATE, classes.REQUEST)
      .setAttribute('REQUESTED-TRANSPORT', 17 << 24)
      .setAttribute('USERNAME', 'user')
      .setAttribute('REALM', 'realm')
      .setAttribute('NONCE', Buffer.from('nonce'))
      .addMessageIntegrity(key)
      .addFingerprint();
    expect(parseMessage(req.bytes, key)?.getAttributeValue('REQUESTED-TRANSPORT')).toBe(17 << 24);
    expect(parseMessage(req.bytes, makeIntegrityKey('user', 'realm', 'wrong'))).toBeUndefined();
  });
});
