// Signaling instances sharing one mesh through Redis (issue 10, issue 24): what crossing instances
// costs. Every figure beside a baseline from the same run: relay within one instance vs across two,
// registrations on one instance vs spread over three (paired trials), and 50,000 agents held by
// three fresh instances in meshes of ten spread over all three, against raw ws servers holding the
// same 50,000 sockets.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startRedisServer } from '../../src/exec/redis.js';
import { freePort } from '../../src/ops/stack/stack.js';
import { median, type Row } from './lib.js';
import { relayTrials, rss, server, settle, signalingLoad } from './signaling.js';

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const ms = (x: { p50: number; p99: number }) => `${x.p50.toFixed(2)}/${x.p99.toFixed(2)} ms`;

const SCALE = 50_000;
const LOADS = 4;
// Source addresses 127.0.0.2–17: ~28,000 ephemeral ports each, and 127.0.0.1's left to the rest
// of the machine. Every socket still stays on 127.0.0.0/8.
const SOURCES = Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`);

/**
 * The open-file limit the children inherit. Node raises its soft limit to the hard one at start, so
 * the hard limit is what a server or load process may hold; raising it needs CAP_SYS_RESOURCE,
 * which a container may lack (here: hard 20,000). So no process is asked for more: three servers
 * hold a third each, four load processes a quarter each, and the raw baseline runs as three
 * processes too.
 */
function checkFileLimit(perProcess: number): void {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(
    readFileSync('/proc/self/limits', 'utf8'),
  );
  const hard = m?.[2] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m?.[2] ?? 0);
  if (hard < perProcess)
    throw new Error(
      `open-file hard limit ${hard} < ${perProcess} sockets per process (raise it: ulimit -Hn)`,
    );
}

type Server = Awaited<ReturnType<typeof server>>;

async function instances(n: number, redisUrl: string, name: string): Promise<Server[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await server('ifmesh', [
        '--cluster',
        redisUrl,
        '--instance-id',
        `${name}-${i}`,
        // The load processes open every socket before registering any (so the rate measured is
        // the servers'); 50,000 sockets on a loaded 2-core machine take minutes to open.
        '--register-timeout',
        '600000',
        '--max-connections-per-ip',
        String(SCALE),
      ]),
    );
  }
  return out;
}

/**
 * Registers `n` agents with `ifmesh load --signaling-only` from LOADS processes (socket i on
 * urls[i % len], from SOURCES[i % 16]); all frames at once, or at most `inflight` outstanding per
 * process. `whileHeld` runs while they are held; its answer comes back with the figures.
 */
async function hold<T = undefined>(
  urls: string[],
  n: number,
  o: { inflight?: number; raw?: boolean; whileHeld?: () => Promise<T> } = {},
): Promise<{ regPerSec: number; lat: { p50: number; p99: number }; held: T | undefined }> {
  let held: T | undefined;
  const { report } = await signalingLoad({
    urls,
    agents: n,
    processes: LOADS,
    sourceAddresses: SOURCES,
    ...(o.inflight ? { inflight: o.inflight } : {}),
    ...(o.raw ? { raw: true } : {}),
    whileHeld: async () => {
      held = await o.whileHeld?.();
    },
  });
  const lat = report.registration_ms;
  return { regPerSec: report.registrations_per_second, lat: { p50: lat.p50!, p99: lat.p99! }, held };
}

async function totalAgents(url: string): Promise<number> {
  const res = await fetch(`${url.replace('ws://', 'http://')}/stats`, {
    signal: AbortSignal.timeout(10_000),
  });
  return ((await res.json()) as { total_agents: number }).total_agents;
}

/** Paired registration trials, one instance against three. */
const TRIALS = 5;

/**
 * Registrations/s of 10,000 frames sent at once to one instance, then spread over three, five
 * times: the median of each and of the paired ratios (a neighbour's burst slows one pair, not all).
 */
async function registrationTrials(urls: [string, string, string]) {
  const one: number[] = [];
  const three: number[] = [];
  let refused = 0;
  // Five paired trials (the ratio sits near its target, so the median needs more than three); a
  // pair in which an instance refused registrations (cluster_unavailable: its Redis commands timed
  // out while a neighbour starved it of CPU) is counted and run again, at most twice.
  for (let t = 0; one.length < TRIALS && t < TRIALS + 2; t++) {
    try {
      const pair: number[] = [];
      for (const into of [[urls[0]], urls]) {
        pair.push((await hold([...into], 10_000)).regPerSec);
        await settle(1_000);
      }
      one.push(pair[0]!);
      three.push(pair[1]!);
    } catch (err) {
      refused += 1;
      process.stderr.write(`  trial ${t} failed: ${(err as Error).message}\n`);
      await settle(3_000);
    }
  }
  if (one.length === 0) throw new Error('no registration trial completed');
  return { one, three, refused, ratio: median(three.map((x, i) => x / one[i]!)) };
}

/**
 * A fresh server set holding SCALE agents: RSS grown, registration and relay latency while held.
 * `count` asks the servers how many they hold (the raw server has no API: every load process has
 * seen all its registrations acknowledged).
 */
async function atScale(servers: Server[], relayFrom: string, relayTo: string, count?: () => Promise<number>) {
  await settle(1_000);
  const base = servers.reduce((sum, s) => sum + rss(s.pid), 0);
  const raw = !count;
  const h = await hold(
    servers.map((s) => s.url),
    SCALE,
    {
      inflight: 64,
      raw,
      whileHeld: async () => {
        await settle(3_000);
        const held = count ? await count() : SCALE;
        const grown = servers.reduce((sum, s) => sum + rss(s.pid), 0) - base;
        const mb = servers.map((s) => rss(s.pid) / 1e6);
        return { held, grown, mb, relay: await relayTrials([relayFrom, relayTo], raw) };
      },
    },
  );
  const m = h.held!;
  return {
    held: m.held,
    perAgent: m.grown / SCALE,
    mb: m.mb,
    reg: h.lat,
    regPerSec: h.regPerSec,
    relay: m.relay,
  };
}

export async function benchCluster(): Promise<Row[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ifmesh-bench-redis-'));
  const redis = await startRedisServer({ port: await freePort(), dir });
  const running: Server[] = [];
  const stop = (set: Server[]) => {
    for (const s of set.splice(0)) s.stop();
  };
  try {
    running.push(...(await instances(3, redis.url, 'bench')));
    const [a, b, c] = running.map((s) => s.url) as [string, string, string];
    await settle(300);
    const same = await relayTrials([a, a]);
    const cross = await relayTrials([a, b]);
    const reg = await registrationTrials([a, b, c]);
    stop(running);

    // Both at scale split the 50,000 sockets over three processes (the file limit, above).
    checkFileLimit(Math.ceil(SCALE / 3) + 1_000);
    checkFileLimit(SCALE / LOADS + 1_000);
    // The baseline at scale: raw ws servers (no ifmesh logic) holding the same 50,000 sockets, split
    // the same way; relay within one of them (the raw relay knows no other process).
    for (let i = 0; i < 3; i++) running.push(await server('raw'));
    const raw = await atScale(running, running[0]!.url, running[0]!.url);
    stop(running);

    running.push(...(await instances(3, redis.url, 'scale')));
    const ours = await atScale(running, running[0]!.url, running[1]!.url, () => totalAgents(running[1]!.url));
    if (ours.held < SCALE) throw new Error(`three instances hold ${ours.held} agents, not ${fmt(SCALE)}`);
    const redisMb = rss(redis.pid) / 1e6;
    stop(running);

    const perAgent = ours.perAgent / raw.perAgent;
    return [
      {
        measure: 'relay latency p50/p99, 2,000 msg/s over 40 pairs, none lost (median of 3 trials)',
        baseline: `same instance ${ms(same)}`,
        ifmesh: `across instances ${ms(cross)}`,
        ratio: `${(cross.p50 / same.p50).toFixed(2)}× / ${(cross.p99 / same.p99).toFixed(2)}×`,
        // One Redis lookup and publish more per frame: a few tenths of a millisecond at the median.
        // The tails of both are CPU scheduling on a shared 2-core machine (they swap places run to run).
        target: 'p50 ≤ 3× same instance',
        met: cross.p50 <= 3 * same.p50,
      },
      {
        measure:
          'registrations/s, 10,000 register frames at once (Redis claims batched, meshes of ten), median of 5 paired trials',
        baseline: `one instance ${fmt(median(reg.one))}/s (${reg.one.map(fmt).join(', ')})`,
        ifmesh: `three instances ${fmt(median(reg.three))}/s (${reg.three.map(fmt).join(', ')})`,
        // The median of the per-trial ratios: each pair ran back to back, under the same neighbours.
        ratio: `${reg.ratio.toFixed(2)}×${reg.refused ? ` (${reg.refused} trial(s) refused, run again)` : ''}`,
        target: '≥ 0.8× over 5 trials',
        met: reg.ratio >= 0.8 && reg.one.length >= TRIALS,
      },
      {
        measure: `agents held by three instances, meshes of ten spread over all three, from ${SOURCES.length} loopback source addresses`,
        baseline: `${fmt(SCALE)} asked`,
        ifmesh: `${fmt(ours.held)} held, ${fmt(ours.regPerSec)} reg/s, RSS ${ours.mb.map((m) => m.toFixed(0)).join('/')} MB (Redis ${redisMb.toFixed(0)} MB)`,
        ratio: `${(ours.held / SCALE).toFixed(2)}×`,
        target: `≥ ${fmt(SCALE)}`,
        met: ours.held >= SCALE,
      },
      {
        measure: `registration latency p50/p99 while ${fmt(SCALE)} register (${LOADS} × 64 in flight)`,
        baseline: `raw ws ${ms(raw.reg)}, ${fmt(raw.regPerSec)} reg/s`,
        ifmesh: `three instances ${ms(ours.reg)}, ${fmt(ours.regPerSec)} reg/s`,
        ratio: `${(ours.reg.p99 / raw.reg.p99).toFixed(2)}× (p99)`,
        // The raw server verifies nothing; each ifmesh registration verifies an Ed25519 proof and
        // claims the id in Redis. Reported, not bounded.
        target: '— (reported)',
      },
      {
        measure: `relay latency p50/p99 with ${fmt(SCALE)} held, 2,000 msg/s over 40 pairs (median of 3 trials)`,
        baseline: `raw ws ${ms(raw.relay)}`,
        ifmesh: `across instances ${ms(ours.relay)}`,
        ratio: `${(ours.relay.p99 / raw.relay.p99).toFixed(2)}× (p99)`,
        target: '— (reported)',
      },
      {
        measure: `RSS per held agent, (RSS with ${fmt(SCALE)} − RSS fresh) / ${fmt(SCALE)}, summed over the servers`,
        baseline: `raw ws, three processes ${(raw.perAgent / 1024).toFixed(1)} KB`,
        ifmesh: `three instances ${(ours.perAgent / 1024).toFixed(1)} KB`,
        ratio: `${perAgent.toFixed(2)}×`,
        target: '≤ 2×',
        met: perAgent <= 2,
      },
    ];
  } finally {
    stop(running);
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
