// The TURN servers' ports, for `incident p1 --investigate` (the runbook's `ss -tulnp | grep -E
// "8443|3478"`, here against the fleet's TURN servers wherever they run, not only this host's
// sockets) and `incident turn-failure` (which one failed, which one can replace it). A UDP server
// is asked a STUN Binding (coturn answers one on its listening port), or a real Allocate when the
// fleet has credentials; TCP and TLS servers get a TCP connect.
import { connect } from 'node:net';
import { parseIceUrl } from '../../config/ice-url.js';
import { formatDuration, formatMs } from '../../ui/units.js';
import type { Clock } from '../../util/clock.js';
import { probeStun, probeTurnAllocate } from '../troubleshoot/probes.js';

export interface TurnPortCheck {
  url: string;
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
  how: 'stun-binding' | 'turn-allocate' | 'tcp-connect';
  answering: boolean;
  rtt_ms: number | null;
  relayed?: string;
  error?: string;
}

/** The runbook's `timeout 2 nc -zv host port`. */
export const TURN_PROBE_MS = 2_000;

export function tcpConnect(
  host: string,
  port: number,
  clock: Clock,
): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const s = connect(port, host);
    const timer = clock.setTimeout(() => {
      s.destroy();
      resolve({ ok: false, error: `no answer within ${formatDuration(TURN_PROBE_MS)}` });
    }, TURN_PROBE_MS);
    s.once('connect', () => {
      clock.clearTimeout(timer);
      s.destroy();
      resolve({ ok: true });
    });
    s.once('error', (err) => {
      clock.clearTimeout(timer);
      resolve({ ok: false, error: err.message });
    });
  });
}

export async function checkTurnPorts(
  urls: string[],
  o: { credentials: { username: string; password: string } | null; allocate: boolean; clock: Clock },
): Promise<TurnPortCheck[]> {
  return Promise.all(
    [...new Set(urls)].map(async (url): Promise<TurnPortCheck> => {
      const u = parseIceUrl(url, ['turn', 'turns']);
      if (typeof u === 'string')
        return {
          url,
          host: '',
          port: 0,
          transport: 'udp',
          how: 'stun-binding',
          answering: false,
          rtt_ms: null,
          error: u,
        };
      const transport = u.scheme === 'turns' || u.transport === 'tcp' ? 'tcp' : 'udp';
      const base = { url, host: u.host, port: u.port, transport } as const;
      if (transport === 'tcp') {
        const t0 = o.clock.now();
        const r = await tcpConnect(u.host, u.port, o.clock);
        return {
          ...base,
          how: 'tcp-connect',
          answering: r.ok,
          rtt_ms: r.ok ? o.clock.now() - t0 : null,
          ...(r.error ? { error: r.error } : {}),
        };
      }
      const stun = { timeoutMs: TURN_PROBE_MS, clock: o.clock };
      const r =
        o.allocate && o.credentials
          ? await probeTurnAllocate(url, o.credentials, stun)
          : await probeStun(url, stun);
      return {
        ...base,
        how: o.allocate && o.credentials ? 'turn-allocate' : 'stun-binding',
        answering: r.ok,
        rtt_ms: r.rtt_ms,
        ...(r.relayed ? { relayed: r.relayed } : {}),
        ...(r.error ? { error: r.error } : {}),
      };
    }),
  );
}

export function describeTurnCheck(c: TurnPortCheck): string {
  const what = `${c.url} (${c.transport} ${c.port})`;
  if (!c.answering) return `${what}: NOT answering (${c.how}: ${c.error ?? 'no answer'})`;
  return `${what}: answers ${c.how === 'turn-allocate' ? `a TURN Allocate (relayed ${c.relayed})` : c.how === 'tcp-connect' ? 'a TCP connect' : 'a STUN Binding'}${c.rtt_ms !== null ? ` in ${formatMs(c.rtt_ms)}` : ''}`;
}

/** Quoted for a shell: TURN URLs carry `?`, a glob character. */
export const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
