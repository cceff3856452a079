// The pieces behind the cluster's and the witness's trust, without sockets: the sealed cluster
// message codec (HMAC bound to the channel, freshness, replay, schema) and the limiter that decides
// which failed admin calls get an audit entry. Time is an input to both.
import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter } from '../../src/services/http/auth-failures.js';
import { ClusterCodec, clusterKey } from '../../src/services/signaling/cluster-messages.js';

const key = clusterKey('unit-secret', 'ifmesh:');
const relay = { to: 'agent-a', mesh: 'default', t: '{"type":"offer","from":"agent-b","sdp":"x"}' };

describe('cluster message codec', () => {
  it('opens what a holder of the secret sealed for that channel, once', () => {
    let now = 1_000_000;
    const a = new ClusterCodec({ key, instanceId: 'i-1', now: () => now });
    const b = new ClusterCodec({ key, instanceId: 'i-2', now: () => now });
    const msg = a.seal('ifmesh:relay:i-2', 'relay', relay);
    expect(b.open('ifmesh:relay:i-2', 'relay', msg)).toMatchObject({ ok: true, m: relay, sender: a.sender });
    expect(b.open('ifmesh:relay:i-2', 'relay', msg)).toMatchObject({ ok: false, reason: 'replayed' });
    // Another channel, another secret, no MAC, a stale clock: each refused with its reason.
    expect(b.open('ifmesh:relay:i-3', 'relay', a.seal('ifmesh:relay:i-2', 'relay', relay))).toMatchObject({
      ok: false,
      reason: 'bad_signature',
    });
    const other = new ClusterCodec({ key: clusterKey('other', 'ifmesh:'), instanceId: 'x', now: () => now });
    expect(
      b.open(
        'ifmesh:admin',
        'admin',
        other.seal('ifmesh:admin', 'admin', { o: 'x', p: { kind: 'unblock', agent_id: 'a' } }),
      ),
    ).toMatchObject({ reason: 'bad_signature' });
    expect(b.open('ifmesh:admin', 'admin', '{"o":"x","p":{"kind":"reconnect"}}')).toMatchObject({
      reason: 'unsigned',
    });
    const late = a.seal('ifmesh:relay:i-2', 'relay', relay);
    now += 31_000;
    expect(b.open('ifmesh:relay:i-2', 'relay', late)).toMatchObject({ reason: 'stale' });
    // Sealed right but not the schema: dropped, and it does not move the sender's number on.
    const bad = a.seal('ifmesh:admin', 'admin', { o: 'i-1', p: { kind: 'reconnect' } } as never);
    expect(b.open('ifmesh:admin', 'admin', bad)).toMatchObject({ reason: 'malformed' });
    const good = a.seal('ifmesh:admin', 'admin', { o: 'i-1', p: { kind: 'reconnect', peers: { a: ['b'] } } });
    expect(b.open('ifmesh:admin', 'admin', good)).toMatchObject({ ok: true });
  });

  it('refuses a payload with a __proto__ key, even sealed with the secret', () => {
    const a = new ClusterCodec({ key, instanceId: 'i-1' });
    // JSON.parse makes "__proto__" an own key, which JSON.stringify then writes out.
    const p = JSON.parse(
      '{"kind":"config","settings":{"__proto__":{"polluted":true}},"frame":{"type":"config"}}',
    );
    const raw = a.seal('ifmesh:admin', 'admin', { o: 'i-1', p });
    expect(raw).toContain('"__proto__"');
    expect(new ClusterCodec({ key, instanceId: 'i-2' }).open('ifmesh:admin', 'admin', raw)).toMatchObject({
      ok: false,
      reason: 'malformed',
    });
  });
});

describe('auth failure limiter', () => {
  it('audits a burst per remote, then counts the rest into the next entry', () => {
    let now = 0;
    const l = new AuthFailureLimiter({
      burst: 2,
      refillMs: 1_000,
      globalBurst: 10,
      globalRefillMs: 100,
      now: () => now,
    });
    expect(l.failure('1.1.1.1')).toEqual({ audit: true, suppressed: 0 });
    expect(l.failure('1.1.1.1')).toEqual({ audit: true, suppressed: 0 });
    for (let i = 0; i < 5; i++) expect(l.failure('1.1.1.1')).toEqual({ audit: false });
    // Another address has its own bucket; the suppressed count rides on the next entry.
    expect(l.failure('2.2.2.2')).toEqual({ audit: true, suppressed: 5 });
    now += 1_000;
    expect(l.failure('1.1.1.1')).toEqual({ audit: true, suppressed: 0 });
    expect(l.failure('1.1.1.1')).toEqual({ audit: false });
    expect(l.dispose()).toBe(1);
  });

  it('caps all addresses together', () => {
    const l = new AuthFailureLimiter({ burst: 5, globalBurst: 3, globalRefillMs: 60_000, now: () => 0 });
    const audited = Array.from({ length: 50 }, (_, i) => l.failure(`10.0.0.${i}`)).filter((v) => v.audit);
    expect(audited).toHaveLength(3);
    expect(l.dispose()).toBe(47);
  });
});
