import { describe, expect, it } from 'vitest';
import { FrameError, parseClientFrame } from '../../src/protocol/signaling.js';

describe('offer/answer session (extension)', () => {
  it('keeps a well-formed session, leaves it out when absent, and refuses a malformed one', () => {
    expect(
      parseClientFrame(JSON.stringify({ type: 'offer', to: 'b', sdp: 'v=0', session: 'abc-1_Z' })),
    ).toEqual({
      type: 'offer',
      to: 'b',
      sdp: 'v=0',
      session: 'abc-1_Z',
    });
    expect(parseClientFrame(JSON.stringify({ type: 'answer', to: 'a', sdp: 'v=0' }))).toEqual({
      type: 'answer',
      to: 'a',
      sdp: 'v=0',
    });
    for (const session of [42, '', 'x'.repeat(65), 'has space'])
      expect(() =>
        parseClientFrame(JSON.stringify({ type: 'answer', to: 'a', sdp: 'v=0', session })),
      ).toThrow(FrameError);
  });
});
