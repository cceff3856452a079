// A peer that was frozen (SIGSTOP) while its partner kept offering answers every offer it missed, in
// order, once it runs again. Only the answer to the partner's newest offer may land on its newest
// link: an older one would point it at a connection the answerer has already closed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RTCPeerConnection } from 'werift';
import { type LinkContext, type LinkIce, PeerLink } from '../../src/agent/peer-link.js';
import { createSigner, generateKeyPair } from '../../src/crypto/ed25519.js';
import { MessageVerifier } from '../../src/crypto/ifmessage.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { startCoturn } from '../helpers/coturn.js';

let turn: RunningTurnserver;
const links: PeerLink[] = [];
beforeAll(async () => {
  turn = await startCoturn();
});
afterAll(async () => {
  for (const l of links) l.close('test over');
  await turn.stop();
});

type Frame = { type: string; sdp: string; session?: string };

function side(selfId: string, seed: Uint8Array, out: Frame[]): LinkContext {
  const signer = createSigner(seed);
  return {
    selfId,
    signer: () => signer,
    verifier: new MessageVerifier({ now: Date.now }),
    now: Date.now,
    newPeerConnection: (ice?: LinkIce) =>
      new RTCPeerConnection({
        iceServers: ice?.iceServers ?? [{ urls: turn.stunUrl }],
        iceTransportPolicy: ice?.policy ?? 'all',
        iceUseIpv4: false,
        iceUseIpv6: false,
        iceAdditionalHostAddresses: ['127.0.0.1'],
      }),
    signal: (frame) => out.push(frame as Frame),
    onState: () => {},
    onReady: () => {},
    onMessage: () => {},
    onRejected: () => {},
    onClosed: () => {},
  };
}

describe('offer/answer sessions', () => {
  it('drops an answer to an older offer, and connects on the answer to the newest', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const fromA: Frame[] = [];
    const fromB: Frame[] = [];
    const ice: LinkIce = { iceServers: [{ urls: turn.stunUrl }], policy: 'all' };
    const track = (l: PeerLink) => (links.push(l), l);

    // a offers, gets no answer (b is frozen), gives up on that link and offers again
    const a1 = track(new PeerLink('b', b.publicKey, side('a', a.seed, fromA)));
    await a1.offer(ice);
    a1.close('new connection attempt');
    const a2 = track(new PeerLink('b', b.publicKey, side('a', a.seed, fromA)));
    await a2.offer(ice);
    const [offer1, offer2] = fromA as [Frame, Frame];
    expect(offer1.session).toBeTruthy();
    expect(offer2.session).not.toBe(offer1.session);

    // b thaws and answers both offers in order; the second replaces its first link
    const b1 = track(new PeerLink('a', a.publicKey, side('b', b.seed, fromB)));
    await b1.acceptOffer(offer1.sdp, offer1.session);
    b1.close('replaced by a new offer');
    const b2 = track(new PeerLink('a', a.publicKey, side('b', b.seed, fromB)));
    await b2.acceptOffer(offer2.sdp, offer2.session);
    const [answer1, answer2] = fromB as [Frame, Frame];
    expect(answer1.session).toBe(offer1.session);
    expect(answer2.session).toBe(offer2.session);

    await a2.acceptAnswer(answer1.sdp, answer1.session);
    expect(a2.pc?.signalingState).toBe('have-local-offer');
    await a2.acceptAnswer(answer2.sdp, answer2.session);
    await Promise.all([a2.whenReady(20_000), b2.whenReady(20_000)]);
    expect(Number.isFinite(await a2.ping())).toBe(true);
  }, 60_000);
});
