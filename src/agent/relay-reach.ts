// Which candidate pairs may go through a TURN relay. A relay on a public TURN server cannot reach a
// peer's private, loopback or link-local host address, and trying is not harmless: coturn (4.6 and
// still at 4.17) marks a relay socket to be closed when a send from it fails (ENETUNREACH where the
// server has no route to 10/8, EPERM behind an egress firewall), which tears down the whole
// allocation. The agent's next ChannelBind then lands on a fresh session and gets 438 "Wrong nonce",
// its relay candidate is dead, and a pair behind symmetric NATs — whose only path is that relay —
// never connects (issue 26). Production coturn configs refuse such peers anyway (denied-peer-ip for
// the private ranges); the agent simply does not ask.
import { BlockList, isIP } from 'node:net';

const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['127.0.0.0', 8],
  ['0.0.0.0', 8],
] as const)
  NON_PUBLIC.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['fc00::', 7],
  ['fe80::', 10],
  ['::1', 128],
] as const)
  NON_PUBLIC.addSubnet(net, bits, 'ipv6');

/** A private, shared (CGNAT), loopback or link-local address. Host names count as public. */
export function isNonPublic(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return NON_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

interface PairLike {
  localCandidate: { type: string };
  remoteCandidate: { type: string; host: string };
}

/**
 * werift's iceFilterCandidatePair for an attempt through `turnHost`: drops (relay, private host)
 * pairs when the TURN server itself is public. A TURN server on a private or loopback address (a
 * LAN, the local stack, the tests) may reach its neighbours, so everything is kept there.
 */
export function relayPairFilter(turnHost: string | undefined): ((pair: PairLike) => boolean) | undefined {
  if (turnHost === undefined || isNonPublic(turnHost)) return undefined;
  return (pair) =>
    !(
      pair.localCandidate.type === 'relay' &&
      pair.remoteCandidate.type === 'host' &&
      isNonPublic(pair.remoteCandidate.host)
    );
}
