// The trees' reachability probes, as results a walk can show: a STUN Binding and a TURN Allocate
// (released at once) through the shared STUN/TURN client.
import { type StunOptions, stunBinding, turnAllocate } from '../../clients/stun.js';
import { parseIceUrl } from '../../config/ice-url.js';

export interface ProbeResult {
  url: string;
  ok: boolean;
  rtt_ms: number | null;
  /** TURN: the relayed address the server allocated. */
  relayed?: string;
  error?: string;
}

const round = (ms: number) => Math.round(ms * 10) / 10;

function target(url: string): { host: string; port: number } | string {
  const u = parseIceUrl(url, ['stun', 'turn', 'turns']);
  return typeof u === 'string' ? u : { host: u.host, port: u.port };
}

export async function probeStun(url: string, o: StunOptions): Promise<ProbeResult> {
  const t = target(url);
  if (typeof t === 'string') return { url, ok: false, rtt_ms: null, error: t };
  try {
    const r = await stunBinding(t, o);
    return { url, ok: true, rtt_ms: round(r.rttMs) };
  } catch (err) {
    return { url, ok: false, rtt_ms: null, error: (err as Error).message };
  }
}

export async function probeTurnAllocate(
  url: string,
  cred: { username: string; password: string },
  o: StunOptions,
): Promise<ProbeResult> {
  const t = target(url);
  if (typeof t === 'string') return { url, ok: false, rtt_ms: null, error: t };
  try {
    const r = await turnAllocate(t, cred, o);
    return { url, ok: true, rtt_ms: round(r.rttMs), relayed: r.relayed };
  } catch (err) {
    return { url, ok: false, rtt_ms: null, error: (err as Error).message };
  }
}
