// `ifmesh agents block|unblock|list` against real signaling servers on loopback: a blocked identity is
// disconnected (4401 blocked), refused at every later registration (by id, and by its key under a new
// id), on every instance sharing the block list file, after a restart, and audited.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { BlockList } from '../../src/services/signaling/block-list.js';
import { run, tempDir } from '../helpers/cli.js';
import { startClusterInstance } from '../helpers/cluster.js';
import { startRedis } from '../helpers/redis.js';
import {
  ADMIN,
  connect,
  getJson,
  postJson,
  type RunningSignaling,
  startSignaling,
} from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function twoInstances() {
  const tmp = tempDir();
  const file = path.join(tmp.dir, 'signaling-blocklist.json');
  const a = await startSignaling({ instanceId: 'sig-a', blockList: new BlockList(file) });
  const b = await startSignaling({ instanceId: 'sig-b', blockList: new BlockList(file) });
  cleanups.push(tmp.cleanup, a.stop, b.stop);
  return { a, b, file, dir: tmp.dir };
}

const cli = (args: string[], sigs: RunningSignaling[], dir: string) =>
  run(['agents', ...args, '--signaling', sigs.map((s) => s.http).join(','), '--state-dir', dir, '--json'], {
    env: { SIGNALING_ADMIN_TOKEN: ADMIN },
  });

describe('agents block', () => {
  it('disconnects the agent, refuses it on every instance by id and by key, audits, and unblock lets it back', async () => {
    const { a, b, dir } = await twoInstances();
    const bad = await connect(a.url);
    await bad.register('mallory');

    // --dry-run names where the agent is and changes nothing
    const dry = await cli(['block', 'mallory', '--dry-run'], [a, b], dir);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dry_run: true,
      instances: [
        { url: a.http, holds_agent: true },
        { url: b.http, holds_agent: false },
      ],
    });
    expect(JSON.parse((await cli(['list'], [a, b], dir)).stdout).blocked).toEqual([]);
    expect(a.events.some((e) => e.event === 'agent_blocked')).toBe(false);

    const r = await cli(['block', 'mallory', '--reason', 'signature failures'], [a, b], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ action: 'block', agent_id: 'mallory', disconnected: 1, known: true });
    expect(report.entry).toMatchObject({ reason: 'signature failures', key_id: expect.any(String) });
    expect(await bad.closed).toEqual({ code: 4401, reason: 'blocked' });
    expect(a.events.find((e) => e.event === 'agent_blocked')).toMatchObject({
      agent_id: 'mallory',
      metadata: { reason: 'signature failures', disconnected: 1 },
    });

    // Through the other instance: same id, same key -> refused with code blocked.
    const again = await connect(b.url);
    const hello = await again.next('hello');
    again.send(again.registerFrame('mallory', hello.nonce, bad.keys));
    expect((await again.next('error')).code).toBe('blocked');
    expect((await again.closed).code).toBe(4401);
    // The same key under a new id is the same identity.
    const renamed = await connect(b.url);
    const h2 = await renamed.next('hello');
    renamed.send(renamed.registerFrame('mallory-2', h2.nonce, bad.keys));
    expect((await renamed.next('error')).code).toBe('blocked');
    // Another agent is unaffected.
    const good = await connect(b.url);
    expect((await good.register('alice')).type).toBe('registered');
    good.close();

    const listed = JSON.parse((await cli(['list'], [a, b], dir)).stdout);
    expect(listed.blocked.map((e: { agent_id: string }) => e.agent_id)).toEqual(['mallory']);

    const u = await cli(['unblock', 'mallory'], [a, b], dir);
    expect(u.code).toBe(0);
    expect(
      b.events.some((e) => e.event === 'agent_unblocked') ||
        a.events.some((e) => e.event === 'agent_unblocked'),
    ).toBe(true);
    const back = await connect(b.url);
    expect((await back.register('mallory', bad.keys)).type).toBe('registered');
    back.close();
    expect(JSON.parse((await cli(['list'], [a, b], dir)).stdout).blocked).toEqual([]);
  });

  it('cuts the blocked agent off from its peers too: their DataChannels to it close, the rest stay', async () => {
    const { a, dir } = await twoInstances();
    const agents = ['good-1', 'good-2', 'mallory'].map(
      (id) =>
        new MeshAgent({
          agentId: id,
          identity: generateKeyPair(),
          signalingUrls: [a.url],
          iceServers: [],
          loopbackOnly: true,
        }),
    );
    cleanups.push(async () => {
      await Promise.all(agents.map((x) => x.stop()));
    });
    for (const x of agents) x.start();
    const [good1, good2] = agents as [MeshAgent, MeshAgent, MeshAgent];
    await good1.waitForPeers(['good-2', 'mallory'], 20_000);
    await good2.waitForPeers(['good-1', 'mallory'], 20_000);
    const r = await cli(['block', 'mallory', '--reason', 'drill'], [a], dir);
    expect(r.code, r.stderr).toBe(0);
    await waitFor(
      () => ![good1, good2].some((g) => g.links.get('mallory') && !g.links.get('mallory')!.closed),
      "the good agents' links to mallory closed",
    );
    expect(good1.links.get('good-2')?.ready && !good1.links.get('good-2')!.closed).toBe(true);
  });

  it('keeps the block across a restart: a new server reading the file refuses the agent', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const file = path.join(tmp.dir, 'signaling-blocklist.json');
    const first = await startSignaling({ blockList: new BlockList(file) });
    const c = await connect(first.url);
    await c.register('eve');
    expect(
      (await postJson(`${first.http}/admin/block`, { agent_id: 'eve', reason: 'test' }, ADMIN)).status,
    ).toBe(200);
    await first.stop();

    const second = await startSignaling({ blockList: new BlockList(file) });
    cleanups.push(second.stop);
    const again = await connect(second.url);
    const hello = await again.next('hello');
    again.send(again.registerFrame('eve', hello.nonce, c.keys));
    expect((await again.next('error')).code).toBe('blocked');
  });

  it('refuses the admin calls without the token and bad ids; unblocking an unknown agent exits 1', async () => {
    const { a, dir } = await twoInstances();
    expect((await postJson(`${a.http}/admin/block`, { agent_id: 'x' })).status).toBe(401);
    expect((await postJson(`${a.http}/admin/block`, { agent_id: '../etc' }, ADMIN)).status).toBe(400);
    expect((await getJson(`${a.http}/admin/blocks`)).status).toBe(401);
    // A mistyped id blocks nobody: done (an id may be blocked before it registers), and said.
    const typo = await run(['agents', 'block', 'malory', '--signaling', a.http, '--state-dir', dir], {
      env: { SIGNALING_ADMIN_TOKEN: ADMIN, NO_COLOR: '1' },
    });
    expect(typo.code, typo.stderr).toBe(0);
    expect(typo.stdout).toContain('! malory is not registered now and is no agent of this fleet');
    const bad = await cli(['block', '../etc'], [a], dir);
    expect(bad.code).toBe(2);
    expect(bad.stdout).not.toContain('blocked');
    const r = await cli(['unblock', 'nobody'], [a], dir);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('not_blocked');
    const wrong = await run(['agents', 'list', '--signaling', a.http, '--state-dir', dir, '--json'], {
      env: { SIGNALING_ADMIN_TOKEN: 'wrong' },
    });
    expect(wrong.code).toBe(4);
  });

  it('blocks across a Redis cluster: the instance holding the agent drops it, every instance refuses it', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.cleanup());
    const prefix = `blk-${process.pid}`;
    const a = await startClusterInstance(redis.url, prefix, 'ca');
    const b = await startClusterInstance(redis.url, prefix, 'cb');
    cleanups.push(a.stop, b.stop);
    const held = await connect(b.url);
    await held.register('trudy');
    // blocked through a, which does not hold it and keeps its list in memory only
    const r = await postJson(`${a.http}/admin/block`, { agent_id: 'trudy', reason: 'cluster' }, ADMIN);
    expect(r.status).toBe(200);
    expect(r.json.entry.key_id).toEqual(expect.any(String));
    // b closes it on the push; a counts that connection (it answered 0 before)
    expect(r.json.disconnected).toBe(1);
    expect(await held.closed).toEqual({ code: 4401, reason: 'blocked' });
    const again = await connect(b.url);
    const hello = await again.next('hello');
    again.send(again.registerFrame('trudy', hello.nonce, held.keys));
    expect((await again.next('error')).code).toBe('blocked');
    // one call for the cluster, which stands for both of its instances
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const un = await run(
      ['agents', 'unblock', 'trudy', '--signaling', `${b.http},${a.http}`, '--state-dir', tmp.dir],
      { env: { SIGNALING_ADMIN_TOKEN: ADMIN, NO_COLOR: '1' } },
    );
    expect(un.code, un.stderr).toBe(0);
    expect(un.stdout).toContain('trudy unblocked on 2 instance(s)');
    // the unblock reaches a through the cluster: it lets the identity register again
    await waitFor(async () => {
      const c = await connect(a.url);
      const f = await c.register('trudy', held.keys).catch(() => undefined);
      c.close();
      return f?.type === 'registered';
    }, 'trudy to register through a again');
  });

  it('refuses to start on a block list that is not valid JSON, naming the file', () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const file = path.join(tmp.dir, 'signaling-blocklist.json');
    writeFileSync(file, '{"blocked": [');
    expect(() => new BlockList(file)).toThrow(
      /signaling-blocklist\.json is unreadable .*remove it to lift every block/,
    );
  });
});
