// The cluster flag and config key as a user meets them: a bad URL is refused before anything
// starts, a password never shows, and a serving instance names its store and mode.
import { afterAll, describe, expect, it } from 'vitest';
import { run, spawnCli, tempDir } from '../helpers/cli.js';
import { startSignalingProcess } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis.js';
import { getJson } from '../helpers/signaling.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

describe('signaling serve --cluster', () => {
  it('refuses a URL that is not redis:// with exit 2 and what to write instead', async () => {
    const r = await spawnCli(['signaling', 'serve', '--port', '0', '--cluster', 'http://127.0.0.1:6379'], {
      cwd: dir,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('SIGNALING_CLUSTER_URL');
    expect(r.stderr).toContain('use redis://host:port');
  });

  it('never prints the password of SIGNALING_CLUSTER_URL', async () => {
    const r = await run(['config', 'show', '--json'], {
      cwd: dir,
      env: { SIGNALING_CLUSTER_URL: 'redis://:hunter2-secret@127.0.0.1:6390' },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('hunter2-secret');
    expect(r.stdout).toContain('SIGNALING_CLUSTER_URL');
  });

  it('names its cluster store in its ready line, and its mode in /health and /metrics', async () => {
    const redis = await startRedis();
    try {
      const svc = await startSignalingProcess(['--cluster', redis.url, '--instance-id', 'cli-1']);
      try {
        expect(svc.ready.cluster).toBe(redis.url);
        const health = await getJson(`${svc.url.replace('ws://', 'http://')}/health`);
        expect(health.json).toMatchObject({ status: 'ok', cluster: 'redis', instance_id: 'cli-1' });
        const metrics = (await getJson(`${svc.url.replace('ws://', 'http://')}/metrics`)).text;
        expect(metrics).toContain('webrtc_signaling_instance_info{instance_id="cli-1",cluster="redis"} 1');
      } finally {
        await svc.stop();
      }
    } finally {
      await redis.cleanup();
    }
  });
});
