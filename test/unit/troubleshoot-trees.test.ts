// The trees as data: every branch leads somewhere, every leaf is reachable, node and leaf names never
// collide, and docs/troubleshooting.md lists every tree question, so the documentation cannot drift from the data.
// Every piece of advice is something ifmesh accepts: each action names an ifmesh command (checked
// against the registry, its sub-commands and flags) or a configuration key (checked against the
// schema, and its value against the loader).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { type CommandIo, commands } from '../../src/cli/registry.js';
import { loadConfig } from '../../src/config/load.js';
import { CONFIG_KEYS } from '../../src/config/schema.js';
import { FINDING_ACTIONS } from '../../src/ops/troubleshoot/findings.js';
import { parseLimits } from '../../src/ops/troubleshoot/run.js';
import { type Evidence, TREES, walkTree } from '../../src/ops/troubleshoot/trees.js';
import { ROOT } from '../helpers/cli.js';

/** Every action text of every leaf, and every evidence line of every question, with where it is. */
function everyText(): { where: string; text: string; action: boolean }[] {
  const out: { where: string; text: string; action: boolean }[] = [];
  for (const [id, t] of Object.entries(TREES)) {
    for (const [name, n] of Object.entries(t.nodes)) {
      out.push({ where: `${id}/${name} question`, text: n.question, action: false });
      for (const r of n.reads) out.push({ where: `${id}/${name} reads`, text: r, action: false });
    }
    for (const [name, l] of Object.entries(t.leaves))
      for (const a of l.actions) out.push({ where: `${id}/${name}`, text: a, action: true });
  }
  for (const [id, actions] of Object.entries(FINDING_ACTIONS))
    for (const a of actions) out.push({ where: `finding ${id}`, text: a, action: true });
  return out;
}

const KEY = /\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g;
/** `ifmesh` and the words after it, up to punctuation that ends a command line in prose. */
const COMMAND = /\bifmesh ([^;,():`]+)/g;

/** The registry's command, with its sub-commands and flags, as commander builds it for a run. */
async function commandTree(name: string): Promise<Command | undefined> {
  const entry = commands.find((c) => c.name === name);
  if (!entry) return undefined;
  const cmd = new Command(name);
  const io = { ctx: {}, output: () => ({}), setExitCode: () => {}, claimSignal: () => {} };
  (await entry.load()).register(cmd, io as unknown as CommandIo);
  return cmd;
}

describe('decision trees as data', () => {
  it('are closed: each answer names a node or a leaf, each leaf is reached, no name is both', () => {
    for (const [id, t] of Object.entries(TREES)) {
      expect(t.nodes[t.start], `${id} start`).toBeDefined();
      const reached = new Set<string>();
      for (const [name, node] of Object.entries(t.nodes)) {
        expect(t.leaves[name], `${id}: ${name} is a node and a leaf`).toBeUndefined();
        expect(node.reads.length, `${id}: ${name} reads no evidence`).toBeGreaterThan(0);
        for (const next of Object.values(node.next)) {
          expect(t.nodes[next] ?? t.leaves[next], `${id}: ${name} -> ${next}`).toBeDefined();
          reached.add(next);
        }
      }
      for (const leaf of Object.keys(t.leaves))
        expect(reached, `${id}: leaf ${leaf} unreachable`).toContain(leaf);
    }
  });

  it('the four trees of the failover guide are there, with root causes from the runbook', () => {
    expect(Object.keys(TREES)).toEqual(
      expect.arrayContaining(['connection-failure', 'high-latency', 'packet-loss', 'security']),
    );
    const causes = Object.values(TREES).flatMap((t) => Object.values(t.leaves).map((l) => l.root_cause?.id));
    expect(causes).toEqual(
      expect.arrayContaining([
        'stun_unreachable',
        'no_ice_candidates',
        'relay_network_loss',
        'self_signed_in_production',
        'connection_leak',
        'repeated_signature_failures_one_peer',
      ]),
    );
  });

  it('a walk stops with a clear error on an answer the tree has no branch for', async () => {
    const broken = { agents: async () => [] } as unknown as Evidence;
    // the first question of tree 1 needs the agent
    await expect(walkTree('connection-failure', {}, broken)).rejects.toThrow(/needs the agent/);
  });

  it('tells an empty STUN list from /config apart from no /config at all', async () => {
    const ev = (config: unknown) =>
      ({
        agents: async () => [{ agent_id: 'a' }],
        stun: async () => [],
        config: async () => config,
        witness: async () => [],
        connections: async () => [],
      }) as unknown as Evidence;
    const walk = (config: unknown) => walkTree('connection-failure', { agent: 'a', peer: 'b' }, ev(config));
    const none = await walk({ stunServers: [] });
    expect(none.path[1]).toMatchObject({ answer: 'none configured' });
    const unread = await walk(null);
    expect(unread.path[1]).toMatchObject({ answer: 'config unreadable' });
    expect(String(unread.path[1]!.evidence.note)).toContain('no signaling instance answered /config');
    // Both go on to what the agents exchanged (none here).
    expect(unread.root_cause?.id).toBe('no_ice_candidates');
  });

  it('a pair connected now exchanged its candidates, however long ago: the walk goes on past ICE', async () => {
    const ev = {
      agents: async () => [{ agent_id: 'a' }, { agent_id: 'b' }],
      stun: async () => [],
      config: async () => ({ stunServers: [], turnFallbackTimeout: 5000 }),
      // Nothing in the witness's last 5 minutes: the pair connected earlier.
      witness: async () => [],
      connections: async () => [{ agent_id: 'b', peer_id: 'a', state: 'connected', candidate_type: 'host' }],
    } as unknown as Evidence;
    const w = await walkTree('connection-failure', { agent: 'a', peer: 'b' }, ev);
    expect(w.path[2]).toMatchObject({ answer: 'yes', evidence: { connected_now: true } });
    expect(w.root_cause).toBeNull();
  });

  it('instances answering with an untrusted certificate are not "down": the fix named is trust', async () => {
    const ev = (unverified: boolean) =>
      ({
        agents: async () => [],
        health: async () => [
          {
            url: 'https://127.0.0.1:19443',
            up: false,
            status: null,
            error: 'x',
            ...(unverified ? { unverified } : {}),
          },
        ],
      }) as unknown as Evidence;
    const untrusted = await walkTree('connection-failure', { agent: 'a', peer: 'b' }, ev(true));
    expect(untrusted.root_cause?.id).toBe('signaling_certificate_untrusted');
    expect(untrusted.actions.join('\n')).not.toContain('failover');
    const down = await walkTree('connection-failure', { agent: 'a', peer: 'b' }, ev(false));
    expect(down.root_cause?.id).toBe('signaling_down');
  });

  it('--limit accepts known limits only', () => {
    expect(parseLimits(['rttTurnMs=800', 'lossRatio=0.1'])).toEqual({ rttTurnMs: 800, lossRatio: 0.1 });
    expect(() => parseLimits(['rtt=1'])).toThrow(/unknown limit/);
    expect(() => parseLimits(['jitterMs=fast'])).toThrow(/a number/);
  });

  it('every action names an ifmesh command or a configuration key', () => {
    for (const { where, text, action } of everyText()) {
      if (!action) continue;
      const names = [...text.matchAll(COMMAND)].length + [...text.matchAll(KEY)].length;
      expect(names, `${where}: "${text}" names neither a command nor a key`).toBeGreaterThan(0);
    }
  });

  it('every UPPER_SNAKE key the trees name is a configuration key, and KEY=VALUE a value it accepts', async () => {
    const known = new Set(CONFIG_KEYS.map((k) => k.key));
    const cwd = mkdtempSync(path.join(tmpdir(), 'ifmesh-trees-'));
    try {
      for (const { where, text } of everyText()) {
        for (const m of text.matchAll(KEY)) expect(known, `${where}: ${m[0]} in "${text}"`).toContain(m[0]);
        for (const m of text.matchAll(/\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)=([^\s,;)]+)/g)) {
          // What `--set KEY=VALUE` does with it: the loader validates the value as it would in a run.
          const loaded = await loadConfig({ cwd, env: {}, flags: { [m[1]!]: m[2]! } });
          expect(loaded.raw[m[1]!], `${where}: ${m[0]}`).toBe(m[2]);
        }
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('every `ifmesh …` the trees name is a registered command, with its sub-command and flags', async () => {
    let named = 0;
    for (const { where, text } of everyText()) {
      for (const m of text.matchAll(COMMAND)) {
        named += 1;
        const [name, ...rest] = m[1]!.trim().split(/\s+/);
        const cmd = await commandTree(name!);
        expect(cmd, `${where}: ifmesh ${name} is not in the registry`).toBeDefined();
        let leaf = cmd!;
        const sub = rest[0];
        if (leaf.commands.length > 0 && sub && /^[a-z][a-z0-9-]*$/.test(sub)) {
          const found = leaf.commands.find((c) => c.name() === sub);
          expect(found, `${where}: ifmesh ${name} has no sub-command ${sub}`).toBeDefined();
          leaf = found!;
        }
        for (const flag of rest.filter((t) => t.startsWith('--')).map((t) => t.split('=')[0]!))
          expect(
            leaf.options.map((o) => o.long),
            `${where}: ${flag} is not a flag of ifmesh ${name}${leaf === cmd ? '' : ` ${leaf.name()}`}`,
          ).toContain(flag);
      }
    }
    expect(named).toBeGreaterThan(20);
  });

  it('docs/troubleshooting.md names every question of every tree', () => {
    const page = readFileSync(path.join(ROOT, 'docs/troubleshooting.md'), 'utf8');
    for (const t of Object.values(TREES))
      for (const n of Object.values(t.nodes)) expect(page, n.question).toContain(n.question);
  });
});
