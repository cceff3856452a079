// The trees as data: every branch leads somewhere, every leaf is reachable, node and leaf names never
// collide, and the README lists every tree question, so the documentation cannot drift from the data.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLimits } from '../../src/ops/troubleshoot/run.js';
import { type Evidence, TREES, walkTree } from '../../src/ops/troubleshoot/trees.js';
import { ROOT } from '../helpers/cli.js';

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

  it('--limit accepts known limits only', () => {
    expect(parseLimits(['rttTurnMs=800', 'lossRatio=0.1'])).toEqual({ rttTurnMs: 800, lossRatio: 0.1 });
    expect(() => parseLimits(['rtt=1'])).toThrow(/unknown limit/);
    expect(() => parseLimits(['jitterMs=fast'])).toThrow(/a number/);
  });

  it('the README names every question of every tree', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const t of Object.values(TREES))
      for (const n of Object.values(t.nodes)) expect(readme, n.question).toContain(n.question);
  });
});
