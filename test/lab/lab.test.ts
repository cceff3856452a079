// ifmesh lab on real namespaces and nftables: the plan, the refusal without root, a lab with a cone
// and a symmetric NAT whose mappings coturn's RFC 5780 discovery confirms, nothing routed out of it,
// no IPv6, and `down` leaving no namespace, process or file behind.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { labDown, labStatus, labUp, requireRoot } from '../../src/ops/lab/lab.js';
import { planLab } from '../../src/ops/lab/plan.js';
import { run } from '../helpers/cli.js';
import { labFixture } from '../helpers/lab.js';

const lab = labFixture('l');
const inNs = (ns: string, ...cmd: string[]) =>
  execFileSync('ip', ['netns', 'exec', ns, ...cmd], { timeout: 10_000 }).toString();

describe('ifmesh lab', () => {
  afterAll(async () => {
    await labDown({ name: lab.name }, lab.ctx).catch(() => {});
    lab.cleanup();
  });

  it('plans namespaces, veths made inside them and NAT rules; refuses to run without root', async () => {
    const plan = planLab({ name: 'x', nats: ['cone', 'symmetric', 'none'], turnServers: 2 });
    expect(plan.namespaces).toEqual([
      'ifmesh-lab-x-pub',
      'ifmesh-lab-x-r1',
      'ifmesh-lab-x-h1',
      'ifmesh-lab-x-r2',
      'ifmesh-lab-x-h2',
      'ifmesh-lab-x-h3',
    ]);
    // Every link is created with -n (inside a namespace), never in the host's.
    const links = plan.commands.filter((c) => c.includes('link') && c.includes('add'));
    expect(links.every((c) => c[1] === '-n')).toBe(true);
    const nft = plan.commands.filter((c) => c.includes('nft')).map((c) => c.at(-1));
    expect(nft[0]).toMatch(/oifname "wan" masquerade;/);
    expect(nft[1]).toMatch(/masquerade fully-random/);
    expect(plan.turn.map((t) => t.addresses)).toEqual([
      ['203.0.113.10', '203.0.113.11'],
      ['203.0.113.12', '203.0.113.13'],
    ]);
    expect(() => requireRoot('up', 1000)).toThrow(/needs root/);
    const dry = await run(['lab', 'up', '--name', 'x', '--nat', 'cone', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout).plan.commands.length).toBeGreaterThan(10);
    const bad = await run(['lab', 'up', '--nat', 'cone,fullcone']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/fullcone is not one of cone, symmetric, none/);
  });

  it('builds a cone and a symmetric NAT, confined to the lab, and takes it all down', async () => {
    const up = await labUp(
      { name: lab.name, nats: ['cone', 'symmetric'], turnServers: 1, dryRun: false },
      lab.ctx,
    );
    if (up.dry_run) throw new Error('not a dry run');
    const [h1, h2] = up.lab.plan.hosts;
    const status = await labStatus({ name: lab.name }, lab.ctx);
    expect(status.healthy).toBe(true);
    expect(status.processes.map((p) => p.name).sort()).toEqual(['coturn-1', 'signaling', 'witness']);
    // RFC 5780 discovery against the lab's coturn (two listening addresses) names each NAT.
    const discover = (ns: string, addr: string) =>
      inNs(ns, 'timeout', '5', 'turnutils_natdiscovery', '-m', '-L', addr, '-l', '40000', '203.0.113.10');
    expect(discover(h1!.namespace, h1!.address)).toMatch(/Endpoint Independent Mapping/);
    expect(discover(h2!.namespace, h2!.address)).toMatch(/Address and Port Dependent Mapping/);
    // No route out: hosts only via their router, routers and the public side only connected routes.
    expect(inNs(h1!.namespace, 'ip', 'route').trim().split('\n')[0]).toBe('default via 10.0.1.1 dev eth0 ');
    for (const ns of [up.lab.plan.public.namespace, h1!.router!.namespace])
      expect(inNs(ns, 'ip', 'route')).not.toMatch(/default/);
    expect(inNs(h1!.namespace, 'cat', '/proc/sys/net/ipv6/conf/all/disable_ipv6').trim()).toBe('1');
    expect(inNs(h1!.namespace, 'ip', '-6', 'addr').trim()).toBe('');
    // lab run: a command on a host, its exit code passed on.
    const ran = await run(
      ['lab', 'run', '--name', lab.name, 'h2', '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0'],
      {
        env: { IFMESH_LAB_DIR: lab.dir },
      },
    );
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain('10.0.2.2/24');
    expect(
      (
        await run(['lab', 'run', '--name', lab.name, 'h1', '--', 'false'], {
          env: { IFMESH_LAB_DIR: lab.dir },
        })
      ).code,
    ).toBe(1);

    const pids = up.lab.processes.map((p) => p.pid);
    const down = await run(['lab', 'down', '--name', lab.name, '--json'], {
      env: { IFMESH_LAB_DIR: lab.dir },
    });
    expect(down.code).toBe(0);
    expect(JSON.parse(down.stdout).namespaces_removed).toHaveLength(5);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(`ifmesh-lab-${lab.name}-`);
    expect(existsSync(up.lab.dir)).toBe(false);
  }, 90_000);
});
