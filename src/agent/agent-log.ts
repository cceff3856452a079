// The agent's own log: its stderr, which a supervisor writes to <state>/logs/deploy-agent-<id>.log
// (`ifmesh logs deploy-agent-<id>`). The witness gets every event; an operator woken at 3 a.m. reads
// this first, so it gets one plain, timestamped line for each event that explains an agent —
// signaling unreachable or refusing it and what the agent does next, (re-)registrations, links up and
// down, refused messages — and nothing per message. A repeating event (a reconnect loop, a flood of
// bad signatures, a flapping link) is sampled: its 1st, 2nd, 4th, 8th … occurrence, each line with
// the count, so a day-long outage writes about a dozen lines. No key, password or token is ever in a
// line: events carry none, and URLs lose their user info and query.
import { CLOSE } from '../protocol/signaling.js';
import { formatDuration } from '../ui/units.js';
import type { Clock } from '../util/clock.js';

export interface AgentLogOptions {
  agentId: string;
  clock: Clock;
  write: (line: string) => void;
  /** A repeating event quiet this long starts its count again (its next occurrence is logged). */
  quietMs?: number;
}

type Level = 'info' | 'warn' | 'error';

/** What the signaling server's refusal codes mean to an operator, with the close code that follows. */
const REFUSALS: Record<string, string> = {
  blocked: `blocked by an operator (${CLOSE.unauthorized})`,
  key_revoked: `key revoked (${CLOSE.unauthorized})`,
  id_key_mismatch: `id bound to another key (${CLOSE.idKeyMismatch})`,
};

const CLOSE_NAMES: Record<number, string> = {
  1001: 'going away',
  1006: 'abnormal closure',
  1012: 'service restart',
};

/** Sampled keys kept at most (peers × kinds, distinct failure rounds); beyond it they start over. */
const MAX_KEYS = 1_000;

export class AgentLog {
  private readonly seen = new Map<string, { count: number; last: number }>();
  /** This round's failed URLs, each with why. */
  private round: string[] = [];
  private failedRounds = 0;
  private url: string | undefined;
  private registered = false;
  /** An error frame announcing the close that follows (blocked): said with that close. */
  private closing: string | undefined;
  /** The loss before this registration was not logged (a sampled loop): nor is its re-registration. */
  private quietLoss = false;
  private readonly healed = new Set<string>();

  constructor(private readonly o: AgentLogOptions) {}

  /** A witness event the agent emitted: a line if an operator needs it. */
  event(name: string, m: Record<string, unknown>, peer?: string): void {
    switch (name) {
      case 'signaling_connected':
        this.connected(safeUrl(String(m.url)));
        return;
      case 'signaling_connection_failed':
        this.round.push(`${safeUrl(String(m.url))} ${describeFailure(String(m.error))}`);
        return;
      case 'signaling_connection_lost':
        this.lost(safeUrl(String(m.url)), Number(m.code), typeof m.reason === 'string' ? m.reason : '');
        return;
      case 'signaling_error_received':
        // blocked: the close that follows at once says it, with what the agent does next
        if (!peer && m.code === 'blocked') {
          this.closing = `${REFUSALS.blocked}: ${oneLine(String(m.message))}`;
          return;
        }
        break;
      case 'mesh_partition_healed':
        this.healed.add(oneLine(peer ?? ''));
        return;
    }
    const line = describeEvent(name, m, oneLine(peer ?? ''), this.url ?? '');
    if (!line) return;
    if (name === 'p2p_connection_established' && this.healed.delete(oneLine(peer ?? '')))
      line.text += ', partition healed';
    const n = line.key ? this.sample(line.key) : 1;
    if (n) this.line(line.level, `${line.text}${times(n)}`);
  }

  /** Every signaling URL failed: the agent tries them again in `delayMs`. */
  retrying(delayMs: number): void {
    const failures = this.round.join('; ');
    this.round = [];
    this.failedRounds += 1;
    const attempt = this.failedRounds;
    // Sampled per kind of failure (numbers vary: ports, durations), so reasons that alternate stay bounded too.
    if (!this.sample(`round:${failures.replace(/\d+/g, '#')}`)) return;
    const level = /blocked|revoked|bound to another key/.test(failures) ? 'error' : 'warn';
    this.line(level, `signaling ${failures}; retrying in ${formatDuration(delayMs)} (attempt ${attempt})`);
  }

  /** A link that was up closed (its close has no witness event of its own). */
  linkClosed(peer: string, why: string): void {
    // a partition's line says it already
    if (why === 'heartbeat timeout') return;
    const p = oneLine(peer);
    const n = this.sample(`down:${p}`);
    // a peer leaving says bye: nothing is wrong
    const level = why.startsWith('peer said bye') ? 'info' : 'warn';
    if (n) this.line(level, `link to ${p} closed: ${oneLine(why)}${times(n)}`);
  }

  private connected(url: string): void {
    const again = this.registered;
    const failed = this.failedRounds;
    const skipped = this.round.join('; ');
    const quiet = this.quietLoss && failed === 0 && !skipped;
    this.registered = true;
    this.url = url;
    this.round = [];
    this.failedRounds = 0;
    this.quietLoss = false;
    for (const k of this.seen.keys()) if (k.startsWith('round:')) this.seen.delete(k);
    if (quiet) return;
    const after = failed ? ` after ${failed} failed attempt${failed === 1 ? '' : 's'}` : '';
    this.line(
      'info',
      `${again ? 're-registered' : 'registered'} with signaling ${url}${after}${skipped ? ` (${skipped})` : ''}`,
    );
  }

  private lost(url: string, code: number, reason: string): void {
    const closing = this.closing;
    this.closing = undefined;
    const n = this.sample('lost');
    this.quietLoss = !n;
    if (!n) return;
    const why =
      closing ??
      `close ${code}${reason || CLOSE_NAMES[code] ? ` ${oneLine(reason) || CLOSE_NAMES[code]}` : ''}`;
    this.line(
      closing ? 'error' : 'warn',
      `signaling ${url} closed the connection: ${why}; reconnecting${times(n)}`,
    );
  }

  /** The occurrence's count when it is one to log (1, 2, 4, 8 …), else undefined. */
  private sample(key: string): number | undefined {
    const now = this.o.clock.now();
    let s = this.seen.get(key);
    if (!s || now - s.last > (this.o.quietMs ?? 600_000)) {
      if (!s && this.seen.size >= MAX_KEYS) this.seen.clear();
      s = { count: 0, last: now };
      this.seen.set(key, s);
    }
    s.count += 1;
    s.last = now;
    return (s.count & (s.count - 1)) === 0 ? s.count : undefined;
  }

  private line(level: Level, text: string): void {
    this.o.write(`${new Date(this.o.clock.now()).toISOString()} ${level} ${this.o.agentId}: ${text}`);
  }
}

interface Line {
  level: Level;
  /** What repeats of it are counted under (sampled); none: every occurrence is a line. */
  key?: string;
  text: string;
}

/** The line for an event about a peer, a TURN or STUN server, or signaling's answers. */
function describeEvent(name: string, m: Record<string, unknown>, p: string, url: string): Line | undefined {
  switch (name) {
    case 'signaling_error_received': {
      const code = String(m.code);
      return {
        level: 'warn',
        key: `signaling-error:${code}`,
        text: `signaling ${url} answered ${REFUSALS[code] ?? code}: ${oneLine(String(m.message))}${p ? ` (for ${p})` : ''}`,
      };
    }
    case 'signaling_error':
      return {
        level: 'error',
        key: 'frame-error',
        text: `could not handle a signaling frame: ${oneLine(String(m.error))}`,
      };
    case 'p2p_connection_established': {
      const how = m.candidateType ? ` over a ${oneLine(String(m.candidateType))} candidate` : '';
      return { level: 'info', key: `up:${p}`, text: `link to ${p} up${how}` };
    }
    case 'mesh_partition_detected':
      return {
        level: 'warn',
        key: `partition:${p}`,
        text: `link to ${p} silent for ${formatDuration(Number(m.silent_ms))}: partition detected`,
      };
    case 'mesh_healing_attempt':
      return {
        level: 'info',
        key: `heal:${p}`,
        text: `healing the link to ${p}: first attempt in ${formatDuration(Number(m.delay_ms))}, then backing off`,
      };
    case 'mesh_healing_failed_final':
      return {
        level: 'error',
        key: `gave-up:${p}`,
        text: `gave up on the link to ${p} after ${Number(m.attempts)} healing attempts`,
      };
    case 'connection_attempts_failed':
      return {
        level: 'warn',
        key: `attempts:${p}`,
        text: `could not connect to ${p}: the direct and every relay attempt failed`,
      };
    case 'signature_verification_failed':
      return {
        level: 'warn',
        key: `refused:${p}`,
        text: `refused a message from ${p}: ${oneLine(`${m.reason}: ${m.detail}`)}`,
      };
    case 'dtls_validation_failed':
      return { level: 'warn', key: `dtls:${p}`, text: `DTLS with ${p} failed` };
    case 'peer_key_mismatch':
      return {
        level: 'error',
        key: `key:${p}`,
        text: `refused the key signaling announced for ${p}: ${oneLine(`${m.reason}; ${m.hint}`)}`,
      };
    case 'offer_dropped':
      return {
        level: 'warn',
        key: `offer:${p}`,
        text: `dropped an offer from ${p}: ${oneLine(String(m.reason))}`,
      };
    case 'key_rotation_failed':
      return {
        level: 'error',
        text: `key rotation failed, keeping the current key: ${oneLine(String(m.error))}`,
      };
    case 'all_turn_servers_unhealthy':
    case 'all_stun_servers_unhealthy':
      return {
        level: 'error',
        key: name,
        text: `no ${name.includes('turn') ? 'TURN' : 'STUN'} server answers`,
      };
  }
  const pool = /^(turn|stun)_(server_marked_unhealthy|server_health_check_success)$/.exec(name);
  if (!pool) return undefined;
  const kind = pool[1]!;
  const server = safeUrl(String(m[`${kind}_server`]));
  const failed = pool[2] === 'server_marked_unhealthy';
  return {
    level: failed ? 'warn' : 'info',
    key: `${kind}:${server}`,
    text: `${kind.toUpperCase()} server ${server} ${failed ? `stopped answering (${Number(m.failures)} failed probes)` : 'answers again'}`,
  };
}

/** " (16 times so far)" from the second occurrence on. */
function times(n: number): string {
  return n > 1 ? ` (${n} times so far)` : '';
}

/** How a signaling URL failed, said of the server (the SignalingClient's error message, one line). */
export function describeFailure(error: string): string {
  const e = oneLine(error);
  let m = /^Unexpected server response: (\d+)/.exec(e);
  if (m) return `refused the upgrade: ${m[1]}`;
  m = /^([a-z]+(?:_[a-z]+)*): (.*)$/.exec(e);
  if (m) return `refused the registration: ${REFUSALS[m[1]!] ?? m[1]}: ${m[2]}`;
  m = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)\b/.exec(e);
  if (m) return `is unreachable: ${e}`;
  if (/certificate|altnames|self.signed/i.test(e))
    return `presented a TLS certificate this agent cannot verify: ${e} (trust its CA with --ca or IFMESH_CA_FILE)`;
  m = /^closed (\d+) ?(.*)$/.exec(e);
  if (m) return `closed the connection before registering: ${m[1]}${m[2] ? ` ${m[2]}` : ''}`;
  return `failed: ${e}`;
}

/** A URL without user info, query or fragment (where credentials and tokens would be). */
export function safeUrl(url: string): string {
  return oneLine(url.replace(/\/\/[^/@\s]*@/, '//').replace(/[?#].*$/, ''));
}

/** Text on one line, bounded: server messages and peer ids are not this agent's to trust. */
function oneLine(text: string): string {
  const s = text.replace(/\p{Cc}+/gu, ' ').trim();
  return s.length > 300 ? `${s.slice(0, 299)}…` : s;
}
