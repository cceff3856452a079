// What every MeshRegistry must do; a Redis-backed registry (a later issue) runs this same suite.
import { describe, expect, it } from 'vitest';
import type { AgentRecord, MeshRegistry } from '../../src/services/signaling/registry.js';

const rec = (agentId: string, publicKey: string, sessionId: string, mesh = 'default'): AgentRecord => ({
  agentId,
  publicKey,
  keyId: publicKey.slice(0, 8),
  sessionId,
  instanceId: 'i-1',
  mesh,
  remote: '127.0.0.1',
  connectedAt: '2026-11-22T00:00:00.000Z',
  metadata: {},
});

export function describeRegistryContract(name: string, open: () => Promise<MeshRegistry>): void {
  describe(`MeshRegistry contract: ${name}`, () => {
    it('refuses an id held by another key, lets the same key replace its old session, and the holder re-key', async () => {
      const r = await open();
      expect(await r.claim(rec('a', 'K1', 's1'))).toEqual({ status: 'ok', replaced: undefined });
      expect((await r.claim(rec('a', 'K2', 's2'))).status).toBe('taken');
      const again = await r.claim(rec('a', 'K1', 's3'));
      expect(again.status === 'ok' && again.replaced?.sessionId).toBe('s1');
      expect(await r.claim(rec('a', 'K9', 's3'))).toMatchObject({ status: 'ok' });
      expect((await r.get('a'))?.publicKey).toBe('K9');
    });

    it('releases only for the session that holds the id', async () => {
      const r = await open();
      await r.claim(rec('a', 'K1', 's1'));
      await r.claim(rec('a', 'K1', 's2'));
      expect(await r.release('a', 's1')).toBe(false);
      expect(await r.count()).toBe(1);
      expect(await r.release('a', 's2')).toBe(true);
      expect(await r.get('a')).toBeUndefined();
    });

    it('lists by mesh', async () => {
      const r = await open();
      await r.claim(rec('a', 'K1', 's1', 'blue'));
      await r.claim(rec('b', 'K2', 's2', 'blue'));
      await r.claim(rec('c', 'K3', 's3'));
      expect((await r.list('blue')).map((x) => x.agentId).sort()).toEqual(['a', 'b']);
      expect((await r.list()).length).toBe(3);
      await r.release('a', 's1');
      expect((await r.list('blue')).map((x) => x.agentId)).toEqual(['b']);
    });

    it('keeps the latest connection report per (agent, peer) and forgets the reports of an agent', async () => {
      const r = await open();
      const base = { candidate_type: null, rtt_ms: null, updated_at: 't' } as const;
      expect(await r.report({ ...base, agent_id: 'a', peer_id: 'b', state: 'connecting' })).toBeUndefined();
      expect((await r.report({ ...base, agent_id: 'a', peer_id: 'b', state: 'connected' }))?.state).toBe(
        'connecting',
      );
      await r.report({ ...base, agent_id: 'b', peer_id: 'a', state: 'connected' });
      await r.report({ ...base, agent_id: 'c', peer_id: 'd', state: 'failed' });
      expect(await r.connections()).toHaveLength(3);
      expect((await r.forget('a')).length).toBe(2);
      expect((await r.connections()).map((c) => c.agent_id)).toEqual(['c']);
    });
  });
}
