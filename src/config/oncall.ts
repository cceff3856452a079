// The runbook's "Contact Information" as configuration: one ONCALL_LEVEL_N key per escalation level,
// each a person or a rotation, the channels that reach them, their response target and when they are
// paged. One line per level keeps the roster in the env file, where `config check`, `config show`
// and --set already work, and reads like the runbook:
//
//   ONCALL_LEVEL_1="On-Call Engineer; rotation=webrtc-primary; via=pagerduty; respond=15m; when=declared"
//   ONCALL_LEVEL_2="Engineering Lead; person=Dana; via=slack:@webrtc-oncall; respond=30m; when=L1 unavailable"
//   ONCALL_LEVEL_3="VP Engineering; via=email:engineering-vp@example.com; respond=1h; when=P1 > 1h"

import { parseDuration } from '../util/duration.js';
export type OncallChannel = 'pagerduty' | 'slack' | 'email';
export type OncallSeverity = 'P1' | 'P2' | 'P3' | 'P4';

export interface OncallTarget {
  channel: OncallChannel;
  /** slack: the mention put in the message (`@webrtc-oncall`, `<!subteam^ID>`); email: the address. */
  to?: string;
}

export type OncallWhen =
  /** Paged when the incident is declared (and paging is on). */
  | { kind: 'declared' }
  /** Paged when level `level` is unavailable: its page failed, or it did not acknowledge in time. */
  | { kind: 'unavailable'; level: number }
  /** Paged when the incident is still open `minutes` after it started. */
  | { kind: 'open_longer'; minutes: number };

export interface OncallLevel {
  level: number;
  /** What the runbook calls the level: "On-Call Engineer", "Engineering Lead", "VP Engineering". */
  role: string;
  person: string | null;
  rotation: string | null;
  via: OncallTarget[];
  /** The level's response target: it counts as unavailable when it has not acknowledged by then. */
  respond_minutes: number;
  /** Only for incidents of these severities (null: any). */
  severities: OncallSeverity[] | null;
  when: OncallWhen;
  /** The `when=` text as written, for people. */
  when_text: string;
}

export const ONCALL_KEY = /^ONCALL_LEVEL_(\d+)$/;

const CHANNELS: readonly OncallChannel[] = ['pagerduty', 'slack', 'email'];

/** ifmesh's duration grammar (src/util/duration.ts), as rosters write it too: "30 min", "1H". */
function minutesOf(text: string): number | undefined {
  const ms = parseDuration(text.trim().toLowerCase().replace(/\s+/g, '').replace(/min$/, 'm'), null);
  return ms === undefined ? undefined : ms / 60_000;
}

/** `declared`, `L1 unavailable`, `P1 > 1h`, `P1,P2 declared`, `> 2h`. */
function parseWhen(
  text: string,
  level: number,
): { when: OncallWhen; severities: OncallSeverity[] | null } | string {
  const m = /^((?:P[1-4])(?:\s*[,|]\s*P[1-4])*)?\s*(.*)$/i.exec(text.trim())!;
  const severities = m[1] ? [...new Set(m[1].toUpperCase().split(/\s*[,|]\s*/) as OncallSeverity[])] : null;
  const rest = m[2]!.trim();
  if (/^(declared|at declaration|always)$/i.test(rest)) return { when: { kind: 'declared' }, severities };
  const u = /^L(\d+)\s+unavailable$/i.exec(rest);
  if (u) {
    const ref = Number(u[1]);
    if (ref < 1 || ref >= level)
      return `when=${text}: a level can only wait on a lower level (L1…L${level - 1})`;
    return { when: { kind: 'unavailable', level: ref }, severities };
  }
  const o = /^(?:open\s*)?>\s*(.+)$/i.exec(rest);
  if (o) {
    const minutes = minutesOf(o[1]!);
    if (minutes === undefined || minutes <= 0)
      return `when=${text}: "${o[1]}" is not a duration like 30m or 1h`;
    return { when: { kind: 'open_longer', minutes }, severities };
  }
  return `when=${text} is not "declared", "L<n> unavailable" or "[P1] > 1h"`;
}

/** Parses one level's line; a string is what is wrong with it. An empty line is no level. */
export function parseOncallLevel(level: number, value: string): OncallLevel | null | string {
  const parts = value
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) return null;
  const [role, ...attrs] = parts;
  if (role!.includes('=')) return 'starts with the role ("On-Call Engineer; …"), not an attribute';
  const out: OncallLevel = {
    level,
    role: role!,
    person: null,
    rotation: null,
    via: [],
    respond_minutes: 15,
    severities: null,
    when: level === 1 ? { kind: 'declared' } : { kind: 'unavailable', level: level - 1 },
    when_text: level === 1 ? 'declared' : `L${level - 1} unavailable`,
  };
  for (const attr of attrs) {
    const eq = attr.indexOf('=');
    const key = eq > 0 ? attr.slice(0, eq).trim().toLowerCase() : attr.toLowerCase();
    const v = eq > 0 ? attr.slice(eq + 1).trim() : '';
    if (!v) return `"${key}" needs a value (${key}=…)`;
    switch (key) {
      case 'person':
        out.person = v;
        break;
      case 'rotation':
        out.rotation = v;
        break;
      case 'via':
        for (const item of v.split(',').map((s) => s.trim())) {
          const colon = item.indexOf(':');
          const channel = (colon > 0 ? item.slice(0, colon) : item).toLowerCase() as OncallChannel;
          const to = colon > 0 ? item.slice(colon + 1).trim() : '';
          if (!CHANNELS.includes(channel))
            return `via=${item}: the channels are pagerduty, slack[:@mention], email[:address]`;
          if (channel === 'pagerduty' && to)
            return 'via=pagerduty takes no target (PAGERDUTY_INTEGRATION_KEY routes it)';
          if (channel === 'email' && to && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(to))
            return `via=email:${to}: not an e-mail address`;
          out.via.push(to ? { channel, to } : { channel });
        }
        break;
      case 'respond': {
        const minutes = minutesOf(v);
        if (minutes === undefined || minutes <= 0) return `respond=${v} is not a duration like 15m or 1h`;
        out.respond_minutes = minutes;
        break;
      }
      case 'when': {
        const w = parseWhen(v, level);
        if (typeof w === 'string') return w;
        out.when = w.when;
        out.severities = w.severities;
        out.when_text = v;
        break;
      }
      default:
        return `unknown attribute "${key}" (person, rotation, via, respond, when)`;
    }
  }
  if (out.via.length === 0) return 'needs via=pagerduty, via=slack[:@mention] or via=email[:address]';
  return out;
}

/** "Engineering Lead (Dana)", "On-Call Engineer (rotation webrtc-primary)". */
export function describeLevel(l: Pick<OncallLevel, 'level' | 'role' | 'person' | 'rotation'>): string {
  const who = l.person ?? (l.rotation ? `rotation ${l.rotation}` : null);
  return `L${l.level} ${l.role}${who ? ` (${who})` : ''}`;
}

export const describeTarget = (t: OncallTarget) => (t.to ? `${t.channel} ${t.to}` : t.channel);

/** The roster of the schema's defaults (the runbook's Contact Information), for callers without a config. */
export function defaultRoster(defaults: { key: string; kind: string; default: string }[]): OncallLevel[] {
  return defaults
    .filter((k) => k.kind === 'oncall')
    .map((k) => parseOncallLevel(Number(ONCALL_KEY.exec(k.key)?.[1] ?? 0), k.default))
    .filter((l): l is OncallLevel => l !== null && typeof l !== 'string');
}
