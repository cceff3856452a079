import { describe, expect, it } from 'vitest';
import { nginxConfig } from '../../src/exec/nginx.js';
import { planSignalingTopology } from '../../src/ops/stack/signaling-topology.js';

describe('signaling topology for up/deploy', () => {
  it('without Redis: one active instance, the others nginx backups and listed after it', () => {
    const t = planSignalingTopology({
      instances: [9001, 9002, 9003],
      redis: null,
      frontDoor: 'ws://127.0.0.1:9000',
    });
    expect(t.mode).toBe('standby');
    expect(t.nginx).toEqual({ upstreams: [9001], backups: [9002, 9003] });
    expect(t.agentUrls).toEqual([
      'ws://127.0.0.1:9000',
      'ws://127.0.0.1:9001',
      'ws://127.0.0.1:9002',
      'ws://127.0.0.1:9003',
    ]);
    expect(t.serveArgs).toEqual([]);
    expect(t.serveEnv).toEqual({});
    const conf = nginxConfig({ prefix: '/tmp/x', listenPort: 9000, ...t.nginx });
    expect(conf).toContain('server 127.0.0.1:9001 max_fails=3 fail_timeout=30s;');
    expect(conf).toContain('server 127.0.0.1:9002 backup;');
    expect(conf).toContain('server 127.0.0.1:9003 backup;');
  });

  it('with Redis: every instance active behind least_conn, given the cluster URL in env, not argv', () => {
    const t = planSignalingTopology({
      instances: [9001, 9002],
      redis: { url: 'redis://:s3cret@127.0.0.1:6390', start: false },
      frontDoor: null,
    });
    expect(t.mode).toBe('redis');
    expect(t.nginx).toEqual({ upstreams: [9001, 9002], backups: [] });
    expect(t.serveArgs).toEqual([]);
    expect(t.serveEnv).toEqual({ SIGNALING_CLUSTER_URL: 'redis://:s3cret@127.0.0.1:6390' });
    expect(t.redis?.shown).not.toContain('s3cret');
    expect(t.agentUrls).toEqual(['ws://127.0.0.1:9001', 'ws://127.0.0.1:9002']);
    expect(nginxConfig({ prefix: '/tmp/x', listenPort: 9000, ...t.nginx })).not.toContain('backup');
  });

  it('one instance is just that', () => {
    expect(planSignalingTopology({ instances: [9001], redis: null, frontDoor: null }).mode).toBe('single');
  });
});
