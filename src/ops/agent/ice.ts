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
