import { EventEmitter } from 'node:events';
import { stripVTControlCharacters as strip } from 'node:util';
import { render } from 'ink';
import { createElement } from 'react';
import { describe, expect, it } from 'vitest';
import type { TopView } from '../../src/ops/monitoring/monitor.js';
import { topLines } from '../../src/ui/top.js';
import { TopApp } from '../../src/ui/top-view.js';

// A terminal of 80×24 as ink sees one: columns and rows, frames captured (debug mode writes whole frames).
class Term extends EventEmitter {
  readonly columns = 80;
  readonly rows = 24;
  readonly isTTY = true;
  frames: string[] = [];
  write = (frame: string) => {
    this.frames.push(frame);
    return true;
  };
}
class Keys extends EventEmitter {
  readonly isTTY = true;
  private data: string | null = null;
  write(d: string) {
    this.data = d;
    this.emit('readable');
    this.emit('data', d);
  }
  read = () => {
    const d = this.data;
    this.data = null;
    return d;
  };
  setEncoding() {}
  setRawMode() {}
  resume() {}
  pause() {}
  ref() {}
  unref() {}
}

function busyView(): TopView {
  const agents = Array.from({ length: 12 }, (_, i) => `agent-with-a-rather-long-name-${i + 1}`);
  return {
    taken_at: '2026-11-30T19:00:00.000Z',
    instances: [
      { url: 'http://127.0.0.1:8443', up: true },
      { url: 'http://127.0.0.1:8444', up: false, error: 'connect ECONNREFUSED' },
    ],
    agents: agents.map((a, i) => ({
      agent_id: a,
      instance: 'signaling-instance-1',
      memory_mib: 90 + i,
      cpu: 0.05,
    })),
    connections: agents.flatMap((a, i) => [
      {
        agent_id: a,
        peer_id: agents[(i + 1) % 12]!,
        state: 'connected',
        candidate_type: i === 3 ? 'relay' : 'host',
        rtt_ms: 2.5,
        loss_ratio: i === 3 ? 0.125 : 0,
      },
      {
        agent_id: a,
        peer_id: agents[(i + 2) % 12]!,
        state: i === 5 ? 'failed' : 'connected',
        candidate_type: null,
        rtt_ms: null,
        loss_ratio: null,
      },
    ]),
    messages: { sent: 123_456, received: 123_400, errors: 2, sent_per_s: 1520.5, received_per_s: 1519.9 },
    turn: { relay_connections: 1, connected: 23, fallbacks_total: 1 },
    alerts: Array.from({ length: 8 }, (_, i) => ({
      id: `alert_${i}`,
      metric: 'Something',
      value: i,
      threshold: '0',
      detail: 'a detail long enough to run past the right edge of an eighty-column terminal window',
    })),
  };
}

describe('ifmesh top, rendered by ink', () => {
  it('fits 80×24 without wrapping and quits on q', async () => {
    const term = new Term();
    const keys = new Keys();
    const view = busyView();
    let calls = 0;
    let quit = false;
    const app = render(
      createElement(TopApp, {
        next: async () => {
          calls += 1;
          return view;
        },
        intervalMs: 60_000,
        onQuit: () => {
          quit = true;
        },
      }),
      { stdout: term as never, stdin: keys as never, debug: true, exitOnCtrlC: false, patchConsole: false },
    );
    for (let i = 0; i < 200 && !term.frames.some((f) => f.includes('ALERTS')); i++)
      await new Promise((r) => setImmediate(r));
    const frame = strip(term.frames.filter((f) => f.includes('ALERTS')).at(-1) ?? '');
    const lines = frame.replace(/\n$/, '').split('\n');
    expect(lines.length).toBeLessThanOrEqual(24);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    // Each row is whole on its own line: a wrapped row would split the arrow from its peer.
    const rows = lines.filter((l) => l.includes(' → '));
    expect(rows.length).toBeGreaterThan(3);
    for (const r of rows) expect(r).toMatch(/^agent-with-a-rather-long-name-\d+ → \S+/);
    expect(lines[0]).toContain('signaling 1/2 up');
    expect(lines[0]).toContain('q quits');
    expect(frame).toContain('ALERTS (8)');
    expect(frame).toMatch(/… \d+ more/);
    // cut to fit, the failed and the relayed connections are the ones still shown
    expect(rows[0]).toMatch(/^agent-with-a-rather-long-name-6 → .* failed /);
    expect(rows[1]).toMatch(/^agent-with-a-rather-long-name-4 → .* connected +relay /);
    // columns line up under their headings
    const head = lines.find((l) => l.startsWith('CONNECTION'))!;
    expect(rows[0]!.indexOf('failed')).toBe(head.indexOf('STATE'));
    expect(rows[1]!.indexOf('relay')).toBe(head.indexOf('TYPE'));
    expect(rows[1]).toMatch(/ 12\.5%$/);
    expect(rows[1]!.length).toBe(head.length);
    const agentHead = lines.find((l) => l.startsWith('AGENT'))!;
    expect(lines.find((l) => l.startsWith('agent-with') && !l.includes('→'))!.indexOf('signaling')).toBe(
      agentHead.indexOf('INSTANCE'),
    );
    keys.write('q');
    await app.waitUntilExit();
    expect(quit).toBe(true);
    expect(calls).toBe(1);
  });

  it('shows relay and failed connections in the plain lines', () => {
    const lines = topLines(busyView(), { width: 80, height: 1000 }).map((l) => l.text);
    expect(
      lines.find((l) => l.startsWith('agent-with-a-rather-long-name-4 → ') && l.includes('relay')),
    ).toBeDefined();
    expect(
      lines.find((l) => l.startsWith('agent-with-a-rather-long-name-6 → ') && l.includes('failed')),
    ).toBeDefined();
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
  });
});
