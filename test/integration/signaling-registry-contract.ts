// What every MeshRegistry must do; a Redis-backed registry (a later issue) runs this same suite.
import { describe, expect, it } from 'vitest';
import { generateKeyPair, toBase64url } from '../../src/crypto/ed25519.js';
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
    it('binds an id to its first key for good, and lets the same key replace its old session', async () => {
      const r = await open();
      expect(await r.claim(rec('a', 'K1', 's1'))).toMatchObject({
        status: 'ok',
        replaced: undefined,
        binding: { agent_id: 'a', public_key: 'K1', via: 'first_use' },
      });
      expect(await r.claim(rec('a', 'K2', 's2'))).toMatchObject({
        status: 'taken',
        reason: 'id_key_mismatch',
        binding: { public_key: 'K1' },
      });
      const again = await r.claim(rec('a', 'K1', 's3'));
      expect(again.status === 'ok' && again.replaced?.sessionId).toBe('s1');
      // Not even the holder's own socket may change key without a rotation from the bound key.
      expect(await r.claim(rec('a', 'K9', 's3'))).toMatchObject({
        status: 'taken',
        reason: 'id_key_mismatch',
      });
      // Gone, the id stays bound: another key cannot take it over (the squatting of issue 21).
      expect(await r.release('a', 's3')).toBe(true);
      expect(await r.claim(rec('a', 'K2', 's4'))).toMatchObject({
        status: 'taken',
        reason: 'id_key_mismatch',
      });
      expect((await r.binding('a'))?.public_key).toBe('K1');
    });

    it('moves a binding on a rotation from the bound key, revokes that key, and refuses it under any id', async () => {
      const r = await open();
      await r.claim(rec('a', 'K1', 's1'));
      const forged = { previous_key: 'K0', public_key: 'K2', signature: 'sig' };
      expect(await r.claim(rec('a', 'K2', 's1'), { rotation: forged })).toMatchObject({
        status: 'taken',
        reason: 'id_key_mismatch',
      });
      const proof = { previous_key: 'K1', public_key: 'K2', signature: 'sig12' };
      const rotated = await r.claim(rec('a', 'K2', 's2'), { rotation: proof });
      expect(rotated).toMatchObject({
        status: 'ok',
        replaced: { sessionId: 's1' },
        binding: { public_key: 'K2', via: 'rotation', rotations: [proof] },
        rotated: { public_key: 'K1', agent_id: 'a', reason: 'rotated' },
      });
      expect((await r.get('a'))?.rotations).toEqual([proof]);
      expect(await r.claim(rec('a', 'K1', 's3'))).toMatchObject({ status: 'taken', reason: 'key_revoked' });
      expect(await r.claim(rec('b', 'K1', 's4'))).toMatchObject({
        status: 'taken',
        reason: 'key_revoked',
        revocation: { public_key: 'K1' },
      });
      const ids = await r.identities();
      expect(ids.revoked.map((x) => x.public_key)).toEqual(['K1']);
      expect(ids.bindings.map((b) => [b.agent_id, b.public_key])).toEqual([['a', 'K2']]);
    });

    it('rebinds an id for an operator: the previous key is revoked and its holder handed back', async () => {
      const r = await open();
      const [k1, k2, k3] = [0, 1, 2].map(() => toBase64url(generateKeyPair().publicKey)) as [
        string,
        string,
        string,
      ];
      await r.claim(rec('a', k1, 's1'));
      expect(await r.rebind('a', k2, '2026-11-22T00:00:01.000Z')).toMatchObject({
        status: 'rebound',
        binding: { agent_id: 'a', public_key: k2, via: 'rebind' },
        previous: { public_key: k1 },
        revoked: { public_key: k1, agent_id: 'a', reason: 'rebound' },
        holder: { sessionId: 's1', publicKey: k1 },
      });
      expect(await r.claim(rec('a', k1, 's2'))).toMatchObject({ status: 'taken', reason: 'key_revoked' });
      const back = await r.claim(rec('a', k2, 's3'));
      expect(back.status === 'ok' && back.replaced?.sessionId).toBe('s1');
      // Again with the same key changes nothing; a revoked key cannot be bound.
      expect(await r.rebind('a', k2, 't')).toMatchObject({
        status: 'rebound',
        revoked: undefined,
        holder: undefined,
      });
      expect(await r.rebind('a', k1, 't')).toMatchObject({
        status: 'revoked',
        revocation: { public_key: k1 },
      });
      const fresh = await r.rebind('b', k3, 't');
      expect(fresh.status === 'rebound' && [fresh.previous, fresh.revoked, fresh.holder]).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
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
