import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { IceServer } from '../../agent/agent.js';
import { parseIceUrl } from '../../config/ice-url.js';
import type { MeshConfig } from '../../config/load.js';
import { UsageError } from '../../errors.js';

export interface IceFlags {
  stun?: string | undefined;
  turn?: string | undefined;
  turnUser?: string | undefined;
  turnPass?: string | undefined;
}

/**
 * STUN first, then TURN servers in preference order. werift uses only the first TURN URL it is
 * given, so the agent hands it one TURN server per attempt (see the TURN fallback).
 */
export function iceServers(config: MeshConfig, flags: IceFlags): IceServer[] {
  const list = (
    text: string | undefined,
    schemes: Array<'stun' | 'stuns' | 'turn' | 'turns'>,
    flag: string,
  ) =>
    text
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((u) => {
        const p = parseIceUrl(u, schemes);
        if (typeof p === 'string') throw new UsageError(`${flag}: ${p}`);
        return p.url;
      });
  const stun = list(flags.stun, ['stun', 'stuns'], '--stun') ?? config.stunServers.map((s) => s.url);
  const turn = list(flags.turn, ['turn', 'turns'], '--turn') ?? config.turnServers.map((s) => s.url);
  const username = flags.turnUser ?? config.turnUsername;
  const credential = flags.turnPass ?? config.turnPassword;
  if (turn.length && (!username || !credential))
    throw new UsageError(
      'TURN servers need a username and password',
      'pass --turn-user and --turn-pass, or set TURN_USERNAME/TURN_PASSWORD',
    );
  return [...stun.map((urls) => ({ urls })), ...turn.map((urls) => ({ urls, username, credential }))];
}

/**
 * The IPv4 addresses an agent gathers host candidates on (--ice-address / AGENT_ICE_ADDRESSES):
 * each entry is an address or an interface name, resolved to its IPv4 addresses now. Empty: every
 * interface (werift's default). An unknown interface, or one without an IPv4 address, is a usage
 * error naming what exists.
 */
export function resolveIceAddresses(
  entries: string[],
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    if (isIPv4(entry)) {
      out.push(entry);
      continue;
    }
    const nics = interfaces[entry];
    const v4 = (nics ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address);
    if (!v4.length)
      throw new UsageError(
        nics
          ? `--ice-address ${entry}: the interface has no IPv4 address`
          : `--ice-address ${entry} is neither an IPv4 address nor an interface here`,
        `interfaces with IPv4: ${
          Object.entries(interfaces)
            .filter(([, a]) => a?.some((x) => x.family === 'IPv4'))
            .map(([n]) => n)
            .join(', ') || 'none'
        }`,
      );
    out.push(...v4);
  }
  return [...new Set(out)];
}
