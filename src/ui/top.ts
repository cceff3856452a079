// `ifmesh top` as lines of at most `width` columns and `height` rows: the plain snapshot prints
// them, the ink view colours them. Long lists end in "… N more" instead of scrolling.
import type { TopView } from '../ops/monitoring/monitor.js';

export interface TopLine {
  text: string;
  tone?: 'alert' | 'warn' | 'dim' | 'head';
}

const clip = (s: string, w: number) => (s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s);
const num = (v: number | null, digits = 1) => (v === null ? '-' : v.toFixed(digits));

function limited<T>(items: T[], max: number, line: (x: T) => TopLine): TopLine[] {
  if (items.length <= max) return items.map(line);
  return [
    ...items.slice(0, Math.max(0, max - 1)).map(line),
    { text: `  … ${items.length - max + 1} more`, tone: 'dim' },
  ];
}

/** Failed connections first, then any not connected, then relayed: what is cut off matters least. */
function rank(c: TopView['connections'][number]): number {
  if (c.state === 'failed') return 0;
  if (c.state !== 'connected') return 1;
  return c.candidate_type === 'relay' ? 2 : 3;
}

export function topLines(
  v: TopView,
  opts: { width?: number; height?: number; live?: boolean } = {},
): TopLine[] {
  const width = opts.width ?? 80;
  const height = Math.max(opts.height ?? 24, 12);
  const up = v.instances.filter((i) => i.up).length;
  const title: TopLine = {
    text: `ifmesh top · ${v.agents.length} agents · signaling ${up}/${v.instances.length} up · ${v.taken_at.slice(11, 19)}Z${opts.live ? ' · q quits' : ''}`,
    tone: up < v.instances.length ? 'alert' : 'head',
  };
  const m = v.messages;
  const messages: TopLine = {
    text: `MESSAGES sent ${m.sent} (${num(m.sent_per_s)}/s) · received ${m.received} (${num(m.received_per_s)}/s) · errors ${m.errors}`,
  };
  const turn: TopLine = {
    text: `TURN ${v.turn.relay_connections} of ${v.turn.connected} connected via relay · ${v.turn.fallbacks_total} established through TURN`,
    tone: v.turn.relay_connections > 0 ? 'warn' : undefined,
  };
  // title, two table heads, messages, TURN, alerts head: six fixed rows
  let room = height - 6;
  const alertRows = Math.min(v.alerts.length || 1, 5);
  room -= alertRows;
  const agentRows = Math.min(v.agents.length || 1, Math.max(1, Math.min(5, Math.floor(room / 2))));
  room -= agentRows;
  const connRows = Math.max(1, room);
  const lines: TopLine[] = [
    title,
    {
      text: `${'AGENT'.padEnd(36)}${'INSTANCE'.padEnd(20)}${'MEM MiB'.padStart(9)}${'CPU'.padStart(7)}`,
      tone: 'head',
    },
    ...(v.agents.length
      ? limited(v.agents, agentRows, (a) => ({
          text: `${clip(a.agent_id, 35).padEnd(36)}${clip(a.instance, 19).padEnd(20)}${num(a.memory_mib).padStart(9)}${num(a.cpu, 2).padStart(7)}`,
        }))
      : [{ text: '  no agent registered', tone: 'dim' as const }]),
    {
      text: `${'CONNECTION'.padEnd(42)}${'STATE'.padEnd(13)}${'TYPE'.padEnd(7)}${'RTT ms'.padStart(8)}${'LOSS'.padStart(8)}`,
      tone: 'head',
    },
    ...(v.connections.length
      ? limited(
          [...v.connections].sort((a, b) => rank(a) - rank(b)),
          connRows,
          (c) => ({
            text: `${clip(`${c.agent_id} → ${c.peer_id}`, 41).padEnd(42)}${c.state.padEnd(13)}${(c.candidate_type ?? '-').padEnd(7)}${num(c.rtt_ms).padStart(8)}${(c.loss_ratio === null ? '-' : `${(c.loss_ratio * 100).toFixed(1)}%`).padStart(8)}`,
            tone: c.state === 'failed' ? 'alert' : c.candidate_type === 'relay' ? 'warn' : undefined,
          }),
        )
      : [{ text: '  no connection reported', tone: 'dim' as const }]),
    messages,
    turn,
    { text: `ALERTS (${v.alerts.length})`, tone: v.alerts.length ? 'alert' : 'head' },
    ...(v.alerts.length
      ? limited(v.alerts, alertRows, (a) => ({
          text: `  ${a.id} ${a.value ?? '-'} (threshold ${a.threshold})${a.detail ? ` ${a.detail}` : ''}`,
          tone: 'alert',
        }))
      : [{ text: '  none firing', tone: 'dim' as const }]),
  ];
  return lines.slice(0, height).map((l) => ({ ...l, text: clip(l.text, width) }));
}
